//! Pairing a laptop: the code, its QR code, and the laptops already paired.

use slint::Image;

use super::model::model;
use crate::generated as g;
use crate::generated::Api;
use crate::qr;
use crate::view::{PairedLaptop, PairingView};

/// Shows a pairing code with the QR code of its address, or hides them (`None`). An
/// address too long for a QR code leaves the code and the address in words.
pub(super) fn show_pairing(api: &Api<'_>, pairing: Option<&PairingView>) {
    let Some(pairing) = pairing else {
        api.set_has_pairing(false);
        api.set_pairing(g::Pairing::default());
        return;
    };
    let (qr, modules) = match qr::draw(&pairing.url) {
        Ok(picture) => (
            Image::from_rgba8(picture.pixels),
            i32::try_from(picture.modules).unwrap_or(0),
        ),
        Err(error) => {
            tracing::warn!(%error, url = %pairing.url, "pairing address not drawn as a QR code");
            (Image::default(), 0)
        }
    };
    api.set_pairing(g::Pairing {
        code: pairing.code.clone().into(),
        grouped_code: pairing.grouped_code().into(),
        address: pairing.address().into(),
        instructions: pairing.instructions().into(),
        qr,
        qr_modules: modules,
    });
    api.set_has_pairing(true);
}

/// Replaces the list of paired laptops, each with its "Unpair" button.
pub(super) fn show_paired(api: &Api<'_>, laptops: Vec<PairedLaptop>) {
    api.set_paired(model(
        laptops
            .into_iter()
            .map(|laptop| g::PairedLaptop {
                id: laptop.id.into(),
                name: laptop.name.into(),
                presenting: laptop.presenting,
            })
            .collect(),
    ));
}
