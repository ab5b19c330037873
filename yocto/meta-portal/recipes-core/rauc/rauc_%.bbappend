# meta-rauc-raspberrypi grows partitions 4 and 6 (its layout has /home); ours ends
# with /data on partition 4: this file replaces its rauc-grow-data-partition.service.
FILESEXTRAPATHS:prepend:portal := "${THISDIR}/files:"
