//! Rows for Slint: a list handed to a property as a model.

use slint::{ModelRc, VecModel};

pub(super) fn model<T: Clone + 'static>(rows: Vec<T>) -> ModelRc<T> {
    ModelRc::new(VecModel::from(rows))
}
