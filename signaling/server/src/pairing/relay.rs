//! What passes between a paired laptop and its kiosk: `unpair`, `command`,
//! `commandResult` and `kioskState`. Only a pairing opens the way, in both directions.

use portal_proto::pairing::{
    CommandError, CommandErrorCode, KioskState, RemoteCommand, UnpairReason,
};
use portal_proto::{ErrorCode, PeerId, ServerMessage};

use super::{KioskId, Out, Registry, error, send};

impl Registry {
    /// `unpair`: a laptop ends its own pairing; a kiosk's control connection ends the
    /// one with `target` (or all of its pairings when `target` is absent).
    pub fn unpair(&mut self, peer: PeerId, target: Option<PeerId>) -> Vec<Out> {
        let mut out = Vec::new();
        if self.pairs.contains_key(&peer) {
            self.end_pairing(peer, UnpairReason::LaptopLeft, true, &mut out);
            return out;
        }
        let Some((kiosk, true)) = self.conns.get(&peer).copied() else {
            error(&mut out, peer, ErrorCode::NotPaired, "not paired");
            return out;
        };
        match target {
            Some(laptop) if self.pairs.get(&laptop).is_some_and(|p| p.kiosk == kiosk) => {
                self.end_pairing(laptop, UnpairReason::KioskEnded, true, &mut out);
            }
            Some(laptop) => error(
                &mut out,
                peer,
                ErrorCode::NotPaired,
                format!("{laptop} is not paired with this kiosk"),
            ),
            None => self.end_kiosk_pairings(kiosk, UnpairReason::KioskEnded, true, &mut out),
        }
        out
    }

    /// `command` from a laptop: relayed to its kiosk's control connection if it is
    /// paired and the command is well-formed; otherwise answered `commandResult` with
    /// the error, so the laptop can match it to its `id`.
    pub fn command(&mut self, peer: PeerId, id: u32, command: RemoteCommand) -> Vec<Out> {
        let mut out = Vec::new();
        let refuse = |out: &mut Vec<Out>, code: CommandErrorCode, message: String| {
            send(
                out,
                peer,
                ServerMessage::CommandResult {
                    id,
                    room: None,
                    error: Some(CommandError { code, message }),
                },
            );
        };
        if let Err(e) = command.validate() {
            refuse(&mut out, CommandErrorCode::BadRequest, e.to_string());
        } else if let Some(pair) = self.pairs.get(&peer) {
            send(
                &mut out,
                pair.control,
                ServerMessage::Command {
                    from: peer,
                    id,
                    command,
                },
            );
        } else {
            refuse(
                &mut out,
                CommandErrorCode::NotPaired,
                "pair with a kiosk first".into(),
            );
        }
        out
    }

    /// `commandResult` from a kiosk's control connection, passed to `to` only if `to`
    /// is paired with that kiosk.
    pub fn command_result(
        &mut self,
        peer: PeerId,
        to: PeerId,
        id: u32,
        room: Option<String>,
        error_: Option<CommandError>,
    ) -> Vec<Out> {
        let mut out = Vec::new();
        let kiosk = self.control_kiosk(peer);
        let paired = kiosk.is_some_and(|k| self.pairs.get(&to).is_some_and(|p| p.kiosk == k));
        if paired {
            send(
                &mut out,
                to,
                ServerMessage::CommandResult {
                    id,
                    room,
                    error: error_,
                },
            );
        } else {
            error(
                &mut out,
                peer,
                ErrorCode::NotPaired,
                format!("{to} is not paired with this kiosk"),
            );
        }
        out
    }

    /// `kioskState` from a kiosk's control connection: kept, and passed to its laptops.
    pub fn kiosk_state(&mut self, peer: PeerId, state: KioskState) -> Vec<Out> {
        let mut out = Vec::new();
        let Some(kiosk) = self.control_kiosk(peer) else {
            error(
                &mut out,
                peer,
                ErrorCode::NotPaired,
                "only a kiosk's control connection reports its state",
            );
            return out;
        };
        for laptop in self.laptops_of(kiosk) {
            send(
                &mut out,
                laptop,
                ServerMessage::KioskState {
                    state: state.clone(),
                },
            );
        }
        if let Some(o) = self.online.get_mut(&kiosk) {
            o.state = Some(state);
        }
        out
    }

    fn control_kiosk(&self, peer: PeerId) -> Option<KioskId> {
        match self.conns.get(&peer) {
            Some((kiosk, true)) => Some(*kiosk),
            _ => None,
        }
    }
}
