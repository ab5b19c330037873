//! The transfer tables: ending a transfer, and keeping ended ones within
//! [`FileConfig::keep_finished`](super::FileConfig) so that no peer can grow them without
//! bound (a flood of offers with fresh ids, each declined, ends up here).

use portal_proto::channel::TransferSide;

use super::{FileAction, FileChannel, TransferState};

impl FileChannel {
    pub(super) fn outgoing_in(&self, id: u32, states: &[TransferState]) -> bool {
        self.outgoing
            .get(&id)
            .is_some_and(|o| states.contains(&o.info.state))
    }

    pub(super) fn finish_outgoing(&mut self, id: u32, state: TransferState) {
        let Some(out) = self.outgoing.get_mut(&id) else {
            return;
        };
        if out.info.state.is_final() {
            return;
        }
        out.info.state = state;
        out.hasher = None;
        self.changed(TransferSide::Sender, id);
        self.ended(TransferSide::Sender, id);
        self.pump();
    }

    pub(super) fn finish_incoming(&mut self, id: u32, state: TransferState) {
        let Some(inc) = self.incoming.get_mut(&id) else {
            return;
        };
        if inc.info.state.is_final() {
            return;
        }
        inc.info.state = state;
        inc.ask_until = None;
        inc.hasher = None;
        if std::mem::take(&mut inc.created) {
            let discard = FileAction::Discard {
                id,
                temp: inc.temp.clone(),
            };
            self.actions.push(discard);
        }
        self.changed(TransferSide::Receiver, id);
        self.ended(TransferSide::Receiver, id);
    }

    /// Records that `id` has ended and forgets the oldest ended transfers beyond the cap:
    /// unsuccessful ones first, so received files stay listed longest.
    pub(super) fn ended(&mut self, side: TransferSide, id: u32) {
        let keep = self.config.keep_finished;
        match side {
            TransferSide::Sender => {
                self.ended_out.push_back(id);
                while self.ended_out.len() > keep {
                    let at = oldest_unsuccessful(&self.ended_out, |id| {
                        self.outgoing.get(id).map(|o| &o.info.state)
                    });
                    if let Some(gone) = self.ended_out.remove(at) {
                        self.outgoing.remove(&gone);
                        self.stats.forgotten += 1;
                    }
                }
            }
            TransferSide::Receiver => {
                self.ended_in.push_back(id);
                while self.ended_in.len() > keep {
                    let at = oldest_unsuccessful(&self.ended_in, |id| {
                        self.incoming.get(id).map(|i| &i.info.state)
                    });
                    if let Some(gone) = self.ended_in.remove(at) {
                        self.incoming.remove(&gone);
                        self.stats.forgotten += 1;
                    }
                }
            }
        }
    }
}

/// Where in `ended` (oldest first) the oldest transfer that did not complete is; the
/// oldest of all when every one completed.
fn oldest_unsuccessful<'a>(
    ended: &std::collections::VecDeque<u32>,
    state: impl Fn(&u32) -> Option<&'a TransferState>,
) -> usize {
    ended
        .iter()
        .position(|id| state(id).is_none_or(|s| *s != TransferState::Complete))
        .unwrap_or(0)
}
