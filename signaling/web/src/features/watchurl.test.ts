import { describe, expect, it } from "vitest";
import { parseVideoInput } from "./watchsync";
import { isYouTubeHost, parseStart, parseYouTube, pickRate } from "./youtube";

const ID = "dQw4w9WgXcQ";

describe("parseYouTube", () => {
  it.each([
    [`https://www.youtube.com/watch?v=${ID}`, 0],
    [`https://youtube.com/watch?v=${ID}`, 0],
    [`http://www.youtube.com/watch?v=${ID}`, 0],
    [`https://m.youtube.com/watch?v=${ID}`, 0],
    [`https://music.youtube.com/watch?v=${ID}&list=RDdQw4w9WgXcQ`, 0],
    [`https://www.youtube.com/watch?feature=share&v=${ID}`, 0],
    [`https://www.youtube.com/watch?v=${ID}&t=42s`, 42],
    [`https://www.youtube.com/watch?v=${ID}&t=42`, 42],
    [`https://www.youtube.com/watch?v=${ID}&t=1m30s`, 90],
    [`https://www.youtube.com/watch?v=${ID}&t=1h2m3s`, 3723],
    [`https://www.youtube.com/watch?v=${ID}#t=2m`, 120],
    [`https://youtu.be/${ID}`, 0],
    [`https://youtu.be/${ID}?t=42`, 42],
    [`https://youtu.be/${ID}?si=abcdef&t=7`, 7],
    [`youtu.be/${ID}`, 0],
    [`www.youtube.com/watch?v=${ID}`, 0],
    [`https://www.youtube.com/embed/${ID}`, 0],
    [`https://www.youtube.com/embed/${ID}?start=30&autoplay=1`, 30],
    [`https://www.youtube-nocookie.com/embed/${ID}`, 0],
    [`https://www.youtube.com/shorts/${ID}`, 0],
    [`https://youtube.com/shorts/${ID}?feature=share`, 0],
    [`https://www.youtube.com/live/${ID}?t=15`, 15],
    [`https://www.youtube.com/v/${ID}`, 0],
    [`  https://youtu.be/${ID}  `, 0],
    [`HTTPS://WWW.YOUTUBE.COM/watch?v=${ID}`, 0],
  ])("%s", (input, start) => {
    expect(parseYouTube(input)).toEqual({ videoId: ID, start });
  });

  it("keeps every id character class", () => {
    expect(parseYouTube("https://youtu.be/a-B_c9D0e1F")?.videoId).toBe("a-B_c9D0e1F");
  });

  it.each([
    "",
    "   ",
    "not a url",
    ID,
    "https://www.youtube.com/",
    "https://www.youtube.com/watch",
    "https://www.youtube.com/watch?v=",
    "https://www.youtube.com/watch?v=dQw4w9WgXc", // 10 characters
    "https://www.youtube.com/watch?v=dQw4w9WgXcQQ", // 12 characters
    "https://www.youtube.com/watch?v=dQw4w9WgXc%3D", // decodes to 11 characters, one not allowed
    "https://www.youtube.com/watch?v=dQw4w9WgX.Q",
    "https://youtu.be/",
    "https://youtu.be/dQw4w9WgX!Q",
    "https://www.youtube.com/embed/",
    "https://www.youtube.com/channel/UCuAXFkgsw1L7xaCfnd5JJOw",
    "https://www.youtube.com/playlist?list=PL1234567890",
    `https://notyoutube.com/watch?v=${ID}`,
    `https://youtube.com.evil.example/watch?v=${ID}`,
    `https://evil.example/youtu.be/${ID}`,
    `ftp://youtube.com/watch?v=${ID}`,
    `javascript:alert(1)//youtu.be/${ID}`,
  ])("rejects %j", (input) => {
    expect(parseYouTube(input)).toBeNull();
  });
});

describe("parseStart", () => {
  it.each([
    ["90", 90],
    ["90s", 90],
    ["2m", 120],
    ["1m5s", 65],
    ["1h", 3600],
    ["1h0m1s", 3601],
    ["12.5", 12.5],
    ["", 0],
    ["abc", 0],
    ["-5", 0],
  ])("%j → %d", (text, seconds) => expect(parseStart(text)).toBe(seconds));
});

describe("isYouTubeHost", () => {
  it("knows the hosts", () => {
    for (const h of ["youtube.com", "www.youtube.com", "m.youtube.com", "music.youtube.com", "youtu.be", "www.youtube-nocookie.com"]) expect(isYouTubeHost(h)).toBe(true);
    for (const h of ["example.com", "youtube.co", "evilyoutube.com", "youtube.com.example"]) expect(isYouTubeHost(h)).toBe(false);
  });
});

describe("parseVideoInput", () => {
  it("turns YouTube links into a youtube source with the start time", () => {
    expect(parseVideoInput(`https://youtu.be/${ID}?t=42`)).toEqual({ source: { kind: "youtube", videoId: ID }, start: 42 });
  });

  it("takes direct http(s) video URLs", () => {
    expect(parseVideoInput("https://cdn.example.com/films/a.mp4")).toEqual({ source: { kind: "url", url: "https://cdn.example.com/films/a.mp4" }, start: 0 });
    expect(parseVideoInput("http://127.0.0.1:8000/clip.webm?sig=1")).toEqual({ source: { kind: "url", url: "http://127.0.0.1:8000/clip.webm?sig=1" }, start: 0 });
    expect(parseVideoInput("media.example.org/v.mp4")?.source).toEqual({ kind: "url", url: "https://media.example.org/v.mp4" });
  });

  it.each([
    "",
    "hello",
    "ftp://example.com/a.mp4",
    "file:///home/me/a.mp4",
    "javascript:alert(1)",
    "data:video/mp4;base64,AAAA",
    "https://exa mple.com/a.mp4",
    "https://example.com/a b.mp4",
    "https://user:secret@example.com/a.mp4",
    "https://www.youtube.com/watch?v=short",
    "https://youtu.be/",
    `https://example.com/${"a".repeat(2100)}.mp4`,
  ])("rejects %j", (input) => {
    expect(parseVideoInput(input)).toBeNull();
  });
});

describe("pickRate", () => {
  it("snaps to the nearest available rate", () => {
    const yt = [0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2];
    expect(pickRate(1.25, yt)).toBe(1.25);
    expect(pickRate(1.1, yt)).toBe(1);
    expect(pickRate(3, yt)).toBe(2);
    expect(pickRate(0.97, yt)).toBe(1);
    expect(pickRate(1.5, [])).toBe(1);
    expect(pickRate(1.5, [1])).toBe(1);
  });
});
