//! Portal's Slint views, compiled from `ui/ui/*.slint`; use them through `portal-ui`.
//!
//! A crate of its own because the generated code needs `#[allow(unsafe_code)]` (Slint's
//! vtable macros), which the workspace's `unsafe_code = "forbid"` does not let any crate
//! allow. Nothing else lives here.
#![allow(missing_debug_implementations, unreachable_pub)]

slint::include_modules!();
