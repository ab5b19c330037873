//! The home screen's question to the rooms server: how many people are in the rooms this
//! kiosk lists. One short connection: `hello`, `rooms [...]`, the answer, goodbye; no
//! room is joined. Sans-IO like the rest: the caller opens the connection and feeds what
//! arrives.

use portal_proto::pairing::DeviceHello;
use portal_proto::{
    ClientMessage, ErrorCode, PROTOCOL_VERSION, Role, RoomOccupancy, ServerMessage,
};

/// What to do after a message of the server.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum QueryStep {
    /// Send this and keep reading.
    Send(ClientMessage),
    /// Nothing to do; keep reading.
    Wait,
    /// The answer, in the order the rooms were asked; close the connection.
    Done(Vec<RoomOccupancy>),
    /// The server refused; close the connection.
    Failed { code: ErrorCode, message: String },
}

/// One occupancy query (see the module docs).
#[derive(Clone, Debug)]
pub struct RoomsQuery {
    name: String,
    rooms: Vec<String>,
    device_token: Option<String>,
}

/// The most room names one query asks about (the server refuses more).
pub const MAX_ROOMS: usize = 32;

impl RoomsQuery {
    /// Asks about the first [`MAX_ROOMS`] of `rooms` as the kiosk `name`.
    pub fn new(name: impl Into<String>, rooms: &[String]) -> Self {
        RoomsQuery {
            name: name.into(),
            rooms: rooms.iter().take(MAX_ROOMS).cloned().collect(),
            device_token: None,
        }
    }

    /// Says hello as the enrolled kiosk with this token (so its enrolled name is
    /// accepted).
    #[must_use]
    pub fn with_device_token(mut self, token: Option<String>) -> Self {
        self.device_token = token;
        self
    }

    /// The first message once the connection is open.
    pub fn opened(&self) -> ClientMessage {
        ClientMessage::Hello {
            protocol: PROTOCOL_VERSION,
            name: self.name.clone(),
            role: Role::Kiosk,
            resume: None,
            device: self.device_token.clone().map(|token| DeviceHello {
                token,
                control: false,
            }),
        }
    }

    pub fn on_message(&self, msg: ServerMessage) -> QueryStep {
        match msg {
            ServerMessage::Welcome { .. } => QueryStep::Send(ClientMessage::Rooms {
                rooms: self.rooms.clone(),
            }),
            ServerMessage::Rooms { rooms } => QueryStep::Done(rooms),
            ServerMessage::Error { code, message } => QueryStep::Failed { code, message },
            _ => QueryStep::Wait,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_then_the_question_then_the_answer() {
        let rooms: Vec<String> = (0..40).map(|i| format!("room-{i}")).collect();
        let q = RoomsQuery::new("Room 4.01", &rooms);
        assert!(matches!(
            q.opened(),
            ClientMessage::Hello {
                role: Role::Kiosk,
                ..
            }
        ));
        let welcome = ServerMessage::Welcome {
            protocol: PROTOCOL_VERSION,
            peer_id: portal_proto::PeerId(1),
            server_time: 0.0,
            ice_servers: vec![],
            resume_token: String::new(),
            resumed: false,
        };
        let QueryStep::Send(ClientMessage::Rooms { rooms: asked }) = q.on_message(welcome) else {
            panic!("asks after welcome");
        };
        assert_eq!(asked.len(), MAX_ROOMS);
        let answer = vec![RoomOccupancy {
            room: "room-0".into(),
            peers: 2,
        }];
        assert_eq!(
            q.on_message(ServerMessage::Rooms {
                rooms: answer.clone()
            }),
            QueryStep::Done(answer)
        );
        assert!(matches!(
            q.on_message(ServerMessage::Error {
                code: ErrorCode::BadRequest,
                message: "no".into()
            }),
            QueryStep::Failed {
                code: ErrorCode::BadRequest,
                ..
            }
        ));
    }
}
