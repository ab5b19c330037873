// An offline stand-in of the YouTube IFrame Player API (https://www.youtube.com/iframe_api)
// with the same shape: YT.Player with onReady, onStateChange and onError, getCurrentTime
// polling, fixed playback rates. It plays a local clip in a <video> instead of YouTube.
//
// A plain script, shared by the web e2e tests and the kiosk's YouTube player tests:
// whoever serves it prepends `window.fakeYouTubeClip = "<clip URL>";`. Like the real
// player, a video id that is not 11 characters of [A-Za-z0-9_-] gets onError code 2.
(() => {
  const S = { UNSTARTED: -1, ENDED: 0, PLAYING: 1, PAUSED: 2, BUFFERING: 3, CUED: 5 };
  const RATES = [0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2];
  const VALID_ID = /^[A-Za-z0-9_-]{11}$/;
  window.fakeYouTube = { scripts: (window.fakeYouTube?.scripts ?? 0) + 1, players: [] };
  class Player {
    constructor(element, options) {
      const host = typeof element === "string" ? document.getElementById(element) : element;
      const v = document.createElement("video");
      v.playsInline = true;
      v.preload = "auto";
      v.src = window.fakeYouTubeClip;
      v.dataset.youtube = options.videoId;
      host.replaceWith(v);
      this.v = v;
      this.state = S.UNSTARTED;
      this.volume = 100;
      window.fakeYouTube.players.push({ videoId: options.videoId, playerVars: options.playerVars });
      const ev = options.events ?? {};
      this.ev = ev;
      const set = (s) => {
        this.state = s;
        ev.onStateChange?.({ data: s, target: this });
      };
      this.set = set;
      v.addEventListener("loadedmetadata", () => {
        this.state = S.CUED;
        ev.onReady?.({ target: this });
        this.checkId(options.videoId);
      }, { once: true });
      v.addEventListener("playing", () => set(S.PLAYING));
      v.addEventListener("waiting", () => set(S.BUFFERING));
      v.addEventListener("pause", () => v.ended || set(S.PAUSED));
      v.addEventListener("ended", () => set(S.ENDED));
      // Like the real player, a seek ends with a state change (playing or paused again).
      v.addEventListener("seeked", () => set(v.paused ? S.PAUSED : S.PLAYING));
    }
    checkId(id) {
      if (!VALID_ID.test(String(id))) setTimeout(() => this.ev.onError?.({ data: 2, target: this }), 0);
    }
    playVideo() { this.v.play().catch(() => undefined); }
    pauseVideo() { this.v.pause(); }
    seekTo(seconds) { this.v.currentTime = seconds; }
    cueVideoById(arg) {
      const { videoId, startSeconds } = typeof arg === "object" ? arg : { videoId: arg, startSeconds: 0 };
      if (!VALID_ID.test(String(videoId))) return this.checkId(videoId); // never cued
      this.v.pause();
      this.v.dataset.youtube = videoId;
      this.v.currentTime = Number(startSeconds) || 0;
      this.set(S.CUED);
    }
    loadVideoById(arg) {
      this.cueVideoById(arg);
      this.playVideo();
    }
    getCurrentTime() { return this.v.currentTime; }
    getDuration() { return Number.isFinite(this.v.duration) ? this.v.duration : 0; }
    getPlayerState() { return this.state; }
    getPlaybackRate() { return this.v.playbackRate; }
    setPlaybackRate(rate) { if (RATES.includes(rate)) this.v.playbackRate = rate; }
    getAvailablePlaybackRates() { return RATES.slice(); }
    mute() { this.v.muted = true; }
    unMute() { this.v.muted = false; }
    isMuted() { return this.v.muted; }
    setVolume(volume) { this.volume = Math.min(100, Math.max(0, Number(volume) || 0)); this.v.volume = this.volume / 100; }
    getVolume() { return this.volume; }
    destroy() { this.v.remove(); }
  }
  window.YT = { Player, PlayerState: S, loaded: 1 };
  setTimeout(() => window.onYouTubeIframeAPIReady?.(), 0);
})();
