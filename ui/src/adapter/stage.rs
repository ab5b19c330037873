//! The call's tiles: who is on stage, who in the filmstrip, and their latest frames.

use std::collections::HashSet;

use slint::{ComponentHandle as _, Image, Model};

use super::model::model;
use super::{Frame, Shared, lock};
use crate::frames::TileKey;
use crate::generated as g;
use crate::generated::{Api, MainWindow};
use crate::view::{PeerView, Quality};

/// The letter drawn on a tile without a picture.
fn initial(name: &str) -> String {
    name.chars()
        .find(|c| c.is_alphanumeric())
        .map_or_else(|| "?".to_owned(), |c| c.to_uppercase().collect())
}

fn tile(peer: &PeerView, screen: bool, frame: Option<&Frame>) -> g::Tile {
    g::Tile {
        peer: peer.id.to_string().into(),
        name: peer.name.clone().into(),
        initial: initial(&peer.name).into(),
        muted: peer.muted,
        camera_off: peer.camera_off,
        quality: match peer.quality {
            Quality::Unknown => g::Quality::Unknown,
            Quality::Good => g::Quality::Good,
            Quality::Fair => g::Quality::Fair,
            Quality::Poor => g::Quality::Poor,
        },
        pinned: peer.pinned,
        screen,
        frame: frame
            .map(|f| Image::from_rgba8(f.clone()))
            .unwrap_or_default(),
        has_frame: frame.is_some(),
    }
}

/// Lays the peers out: the first peer marked `on_stage` takes the stage (its screen if it
/// shares one, and then its camera joins the filmstrip); everyone else is in the filmstrip.
pub(super) fn set_peers(api: &Api<'_>, shared: &Shared, peers: &[PeerView]) {
    let mut placement = lock(&shared.placement);
    let mut stage = None;
    let mut filmstrip = Vec::with_capacity(peers.len());
    let mut keys = Vec::with_capacity(peers.len());
    for peer in peers {
        if stage.is_none() && peer.on_stage {
            let key = if peer.has_screen {
                TileKey::Screen(peer.id)
            } else {
                TileKey::Camera(peer.id)
            };
            stage = Some((key, tile(peer, peer.has_screen, placement.last.get(&key))));
            if !peer.has_screen {
                continue;
            }
        }
        let key = TileKey::Camera(peer.id);
        filmstrip.push(tile(peer, false, placement.last.get(&key)));
        keys.push(key);
    }

    let live: HashSet<TileKey> = peers
        .iter()
        .flat_map(|p| [TileKey::Camera(p.id), TileKey::Screen(p.id)])
        .chain([TileKey::SelfView, TileKey::Watch])
        .collect();
    placement.last.retain(|key, _| live.contains(key));
    lock(&shared.slots).retain(|key, _| live.contains(key));

    placement.filmstrip = keys;
    if let Some((key, tile)) = stage {
        placement.stage = Some(key);
        api.set_stage(tile);
        api.set_has_stage(true);
    } else {
        placement.stage = None;
        api.set_has_stage(false);
        api.set_stage(g::Tile::default());
    }
    api.set_filmstrip(model(filmstrip));
}

/// Puts a frame on its tile, wherever that tile is now.
pub(super) fn show_frame(window: &MainWindow, shared: &Shared, key: TileKey, frame: Frame) {
    shared.counters.shown();
    let api = window.global::<Api>();
    let image = Image::from_rgba8(frame.clone());
    let mut placement = lock(&shared.placement);
    placement.last.insert(key, frame);
    if key == TileKey::SelfView {
        api.set_self_view(image);
        api.set_self_view_has_frame(true);
    } else if key == TileKey::Watch {
        api.set_watch_frame(image);
        api.set_watch_has_frame(true);
    } else if placement.stage == Some(key) {
        let mut stage = api.get_stage();
        stage.frame = image;
        stage.has_frame = true;
        api.set_stage(stage);
    } else if let Some(row) = placement.filmstrip.iter().position(|k| *k == key) {
        let filmstrip = api.get_filmstrip();
        if let Some(mut tile) = filmstrip.row_data(row) {
            tile.frame = image;
            tile.has_frame = true;
            filmstrip.set_row_data(row, tile);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::initial;

    #[test]
    fn initials_skip_punctuation_and_upper_case() {
        assert_eq!(initial("ada"), "A");
        assert_eq!(initial("  (bob)"), "B");
        assert_eq!(initial("émile"), "É");
        assert_eq!(initial(""), "?");
    }
}
