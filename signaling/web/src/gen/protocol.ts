// Generated from signaling/proto (portal-proto) by its tests. Do not edit.
// Regenerate with `cargo xtask gen` after changing the Rust types.

export const PROTOCOL_VERSION = 1;
export const MAX_ROOMS_QUERY = 32;
export const PAIRING_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ";
export const PAIRING_CODE_LEN = 6;

export const FILE_FRAME_MAX = 65536;
export const FILE_CHUNK_HEADER = 4;
export const FILE_CHUNK_PAYLOAD = 65532;
export const MAX_CHAT_TEXT = 4000;
export const MAX_FILE_NAME = 255;

export const MAX_NAME_CHARS = 64;
export const MAX_NAME_BYTES = 256;
export const MAX_COMBINING_RUN = 4;
export const MAX_RAW_NAME_BYTES = 1024;
export const NAME_INVISIBLE_RANGES: ReadonlyArray<readonly [number, number]> = [[0x00AD, 0x00AD], [0x034F, 0x034F], [0x061C, 0x061C], [0x115F, 0x1160], [0x17B4, 0x17B5], [0x180B, 0x180F], [0x200B, 0x200F], [0x202A, 0x202E], [0x2060, 0x2064], [0x2066, 0x206F], [0x3164, 0x3164], [0xFE00, 0xFE0F], [0xFEFF, 0xFEFF], [0xFFA0, 0xFFA0], [0xFFF9, 0xFFFB], [0xE0000, 0xE007F]];
export const NAME_COMBINING_RANGES: ReadonlyArray<readonly [number, number]> = [[0x0300, 0x036F], [0x0483, 0x0489], [0x1AB0, 0x1AFF], [0x1DC0, 0x1DFF], [0x20D0, 0x20FF], [0xFE20, 0xFE2F]];
export const NAME_SPACE_RANGES: ReadonlyArray<readonly [number, number]> = [[0x0009, 0x000D], [0x0020, 0x0020], [0x0085, 0x0085], [0x00A0, 0x00A0], [0x1680, 0x1680], [0x2000, 0x200A], [0x2028, 0x2029], [0x202F, 0x202F], [0x205F, 0x205F], [0x3000, 0x3000]];
export const NAME_CONTROL_RANGES: ReadonlyArray<readonly [number, number]> = [[0x0000, 0x001F], [0x007F, 0x009F]];

export type PeerId = number;

export type Role = "browser" | "kiosk";

export type ClientMessage = { "type": "hello", protocol: number, name: string, role: Role, resume?: string, 
/**
 * An enrolled kiosk's identity ([`pairing::DeviceHello`]); browsers leave it out.
 */
device?: DeviceHello, } | { "type": "join", room: string, password?: string, } | { "type": "leave" } | { "type": "signal", to: PeerId, data: SignalData, } | { "type": "watch", state: WatchState, } | { "type": "ping", id: number, clientTime: number, } | { "type": "rooms", rooms: Array<string>, } | { "type": "pair", code: string, } | { "type": "unpair", peer?: PeerId, } | { "type": "command", id: number, command: RemoteCommand, } | { "type": "commandResult", to: PeerId, id: number, room?: string, error?: CommandError, } | { "type": "kioskState", state: KioskState, };

export type ServerMessage = { "type": "welcome", protocol: number, peerId: PeerId, serverTime: number, iceServers: Array<IceServer>, resumeToken: string, resumed: boolean, } | { "type": "joined", room: string, peerId: PeerId, peers: Array<PeerInfo>, watch?: WatchSnapshot, 
/**
 * Grants access to the room's shared document at `/yjs/{room}?token=...`.
 */
docToken: string, 
/**
 * Whether the room is password-protected. Protection is decided when the room
 * is created and never changes, so a client that was given a password can refuse
 * a room that turns out open. Absent (from an older server) reads as false.
 */
protected: boolean, } | { "type": "iceServers", iceServers: Array<IceServer>, } | { "type": "left", room: string, } | { "type": "peerJoined", peer: PeerInfo, } | { "type": "peerLeft", peerId: PeerId, } | { "type": "signal", from: PeerId, data: SignalData, } | { "type": "watch", state: WatchState, serverTime: number, by?: PeerId, } | { "type": "pong", id: number, clientTime: number, serverTime: number, } | { "type": "rooms", rooms: Array<RoomOccupancy>, } | { "type": "pairingCode", code: string, url: string, expiresAt: number, } | { "type": "paired", peer: PeerId, name: string, } | { "type": "pairAccepted", kiosk: PeerId, kioskName: string, expiresAt: number, } | { "type": "unpaired", peer: PeerId, reason: UnpairReason, } | { "type": "command", from: PeerId, id: number, command: RemoteCommand, } | { "type": "commandResult", id: number, room?: string, error?: CommandError, } | { "type": "kioskState", state: KioskState, } | { "type": "error", code: ErrorCode, message: string, };

export type ErrorCode = "badRequest" | "unsupportedProtocol" | "helloRequired" | "alreadyHello" | "notInRoom" | "alreadyInRoom" | "invalidRoomName" | "invalidName" | "roomFull" | "wrongPassword" | "passwordMismatch" | "unknownPeer" | "tooLarge" | "rateLimited" | "idleTimeout" | "serverFull" | "tooManyRooms" | "shuttingDown" | "internal" | "invalidCode" | "codeExpired" | "kioskOffline" | "alreadyPaired" | "notPaired" | "invalidDeviceToken" | "nameReserved" | "replaced";

export type PeerInfo = { id: PeerId, name: string, role: Role, };

export type RoomOccupancy = { room: string, peers: number, };

export type IceServer = { urls: Array<string>, username?: string, credential?: string, };

export type SignalData = { "sdp": SessionDescription } | { "candidate": IceCandidate };

export type SessionDescription = { type: SdpType, sdp: string, };

export type SdpType = "offer" | "answer" | "pranswer" | "rollback";

export type IceCandidate = { candidate: string, sdpMid?: string, sdpMLineIndex?: number, usernameFragment?: string, };

export type WatchState = { source: VideoSource | null, playing: boolean, 
/**
 * Seconds into the video at the accompanying server time.
 */
position: number, rate: number, };

export type WatchSnapshot = { state: WatchState, serverTime: number, };

export type VideoSource = { "kind": "youtube", videoId: string, } | { "kind": "url", url: string, };

export type ChatChannelMessage = { "type": "chat", id: string, from: string, time: number, text: string, } | { "type": "state", audio: boolean, video: boolean, screen: boolean, recording: boolean, };

export type FileMessage = { "type": "offer", id: number, name: string, size: number, mime: string, } | { "type": "accept", id: number, } | { "type": "decline", id: number, reason: DeclineReason, } | { "type": "end", id: number, sha256: string, } | { "type": "complete", id: number, } | { "type": "failed", id: number, reason: string, } | { "type": "cancel", id: number, by: TransferSide, reason: string, };

export type TransferSide = "sender" | "receiver";

export type DeclineReason = "declined" | "policy" | "tooLarge" | "invalid" | "busy" | "noSpace";

export type DeviceHello = { 
/**
 * The token `portal-server kiosk add` printed once.
 */
token: string, 
/**
 * This is the kiosk's control connection: it gets the pairing code, the laptops'
 * commands and `paired`/`unpaired`. A newer control connection replaces an older
 * one. Call connections say `false`.
 */
control: boolean, };

export type RemoteCommand = { "kind": "present" } | { "kind": "stopPresenting" } | { "kind": "joinRoom", room: string, password?: string, } | { "kind": "leave" } | { "kind": "setMicMuted", muted: boolean, } | { "kind": "setCameraOff", off: boolean, } | { "kind": "setVolume", volume: number, };

export type CommandErrorCode = "notPaired" | "badRequest" | "notInCall" | "joinFailed" | "unavailable" | "timeout";

export type CommandError = { code: CommandErrorCode, message: string, };

export type KioskState = { 
/**
 * The room of its call, when in one (joined or getting there).
 */
room?: string, 
/**
 * `true` once joined.
 */
inCall: boolean, micMuted: boolean, cameraOff: boolean, 
/**
 * 0 to 1.
 */
volume: number, 
/**
 * The paired laptop whose screen share is on the stage.
 */
presenting?: PeerId, };

export type UnpairReason = "laptopLeft" | "kioskEnded" | "kioskGone" | "expired" | "removed";
