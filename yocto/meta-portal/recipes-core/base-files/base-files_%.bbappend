# The kiosk's fstab: read-only root, /boot, and the /data partition.
FILESEXTRAPATHS:prepend:portal := "${THISDIR}/files:"

# nooelint: oelint.vars.mispell.unknown - base-files' list of directories to create
dirs755:append:portal = " /data"
