# nooelint: oelint.var.mandatoryvar.SRC_URI - nothing to fetch: made from portal-image
SUMMARY = "Portal kiosk update bundle (RAUC), signed with the builder's key"
DESCRIPTION = "A verity RAUC bundle holding portal-image's root filesystem for slot A or B."
# nooelint: oelint.vars.homepageping - checked offline; the project's address
HOMEPAGE = "https://example.invalid/portal"
LICENSE = "MIT"

inherit bundle

RAUC_BUNDLE_COMPATIBLE = "portal-${MACHINE}"
RAUC_BUNDLE_VERSION = "${PV}"
RAUC_BUNDLE_DESCRIPTION = "Portal kiosk ${PV} for ${MACHINE}"
RAUC_BUNDLE_FORMAT = "verity"

RAUC_BUNDLE_SLOTS = "rootfs"
# nooelint: oelint.vars.mispell.unknown - bundle.bbclass's per-slot variable
RAUC_SLOT_rootfs = "portal-image"
# nooelint: oelint.vars.mispell.unknown - bundle.bbclass's per-slot variable
RAUC_SLOT_rootfs[fstype] = "ext4"

# Keys come from the builder (environment or local.conf), never from this repository:
# without them do_bundle stops with "'RAUC_KEY_FILE' not set".
RAUC_KEY_FILE = "${PORTAL_RAUC_KEY_FILE}"
RAUC_CERT_FILE = "${PORTAL_RAUC_CERT_FILE}"
RAUC_KEYRING_FILE = "${PORTAL_RAUC_KEYRING_FILE}"
