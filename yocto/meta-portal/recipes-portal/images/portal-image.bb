SUMMARY = "Portal meeting-room kiosk image"
DESCRIPTION = "systemd, a read-only root filesystem (one of two RAUC slots) and a /data \
partition; the kiosk on KMS/DRM (no desktop), GStreamer with V4L2 codecs and libcamera, \
ALSA, fonts and cog for watch-together."
LICENSE = "MIT"

inherit core-image

IMAGE_FEATURES += "read-only-rootfs"

IMAGE_LINGUAS = ""

IMAGE_INSTALL = " \
    packagegroup-core-boot \
    kernel-image \
    kernel-modules \
    ${CORE_IMAGE_EXTRA_INSTALL} \
    portal-kiosk \
    rauc \
    rauc-grow-data-part \
    cog \
    gstreamer1.0 \
    gstreamer1.0-plugins-base \
    gstreamer1.0-plugins-good \
    gstreamer1.0-plugins-bad \
    libcamera \
    libcamera-gst \
    alsa-utils \
    alsa-state \
    fontconfig \
    ttf-dejavu-sans \
    ttf-dejavu-sans-mono \
    e2fsprogs-resize2fs \
    parted \
    tzdata \
"

# The image runs from a slot of a fixed size; leave room for what the kiosk adds later.
IMAGE_ROOTFS_EXTRA_SPACE = "262144"
