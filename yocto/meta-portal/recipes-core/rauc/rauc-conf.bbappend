# Portal's system.conf (A/B on mmcblk0p2/p3) and the builder's keyring.
FILESEXTRAPATHS:prepend:portal := "${THISDIR}/files:"

# The CA that update bundles must chain to: PORTAL_RAUC_KEYRING_FILE (never committed).
# meta-rauc's placeholder is fetched, then replaced at install time.
RAUC_KEYRING_FILE:portal = "ca.cert.pem"

do_install[vardeps] += "PORTAL_RAUC_KEYRING_FILE"
do_install:prepend:portal() {
    sed -i "s/@@MACHINE@@/${MACHINE}/g" ${UNPACKDIR}/system.conf
}
do_install:append:portal() {
    if [ -z "${PORTAL_RAUC_KEYRING_FILE}" ] || [ ! -f "${PORTAL_RAUC_KEYRING_FILE}" ]; then
        bbfatal "PORTAL_RAUC_KEYRING_FILE must name the update CA certificate (PEM): '${PORTAL_RAUC_KEYRING_FILE}'"
    fi
    install -m 0644 "${PORTAL_RAUC_KEYRING_FILE}" ${D}${nonarch_libdir}/rauc/ca.cert.pem
}
