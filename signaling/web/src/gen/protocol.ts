// Generated from signaling/proto (portal-proto) by its tests. Do not edit.
// Regenerate with `cargo xtask gen` after changing the Rust types.

export const PROTOCOL_VERSION = 1;
export const MAX_ROOMS_QUERY = 32;

export const FILE_FRAME_MAX = 65536;
export const FILE_CHUNK_HEADER = 4;
export const FILE_CHUNK_PAYLOAD = 65532;
export const MAX_CHAT_TEXT = 4000;
export const MAX_FILE_NAME = 255;

export type PeerId = number;

export type Role = "browser" | "kiosk";

export type ClientMessage = { "type": "hello", protocol: number, name: string, role: Role, resume?: string, } | { "type": "join", room: string, password?: string, } | { "type": "leave" } | { "type": "signal", to: PeerId, data: SignalData, } | { "type": "watch", state: WatchState, } | { "type": "ping", id: number, clientTime: number, } | { "type": "rooms", rooms: Array<string>, };

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
protected: boolean, } | { "type": "left", room: string, } | { "type": "peerJoined", peer: PeerInfo, } | { "type": "peerLeft", peerId: PeerId, } | { "type": "signal", from: PeerId, data: SignalData, } | { "type": "watch", state: WatchState, serverTime: number, by?: PeerId, } | { "type": "pong", id: number, clientTime: number, serverTime: number, } | { "type": "rooms", rooms: Array<RoomOccupancy>, } | { "type": "error", code: ErrorCode, message: string, };

export type ErrorCode = "badRequest" | "unsupportedProtocol" | "helloRequired" | "alreadyHello" | "notInRoom" | "alreadyInRoom" | "invalidRoomName" | "invalidName" | "roomFull" | "wrongPassword" | "passwordMismatch" | "unknownPeer" | "tooLarge" | "rateLimited" | "idleTimeout" | "serverFull" | "tooManyRooms" | "shuttingDown" | "internal";

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

export type DeclineReason = "declined" | "policy" | "tooLarge" | "invalid";
