//! RAUC's `system.conf`, the SD card layout (wks), the fstab and the kiosk unit agree.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context as _, Result, ensure};

use super::*;

// --- layout agreement -------------------------------------------------------------------

/// One partition of the wks file, numbered as the kernel will (`mmcblk0pN`).
#[derive(Debug)]
struct Part {
    number: u32,
    mount: String,
    fstype: String,
    source: Option<String>,
}

fn wks_parts(text: &str) -> Result<Vec<Part>> {
    let lines: Vec<Vec<&str>> = text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("part "))
        .map(|l| l.split_whitespace().collect())
        .collect();
    let gpt = text
        .lines()
        .any(|l| l.trim().starts_with("bootloader") && l.contains("--ptable gpt"));
    let mut parts = Vec::new();
    for (index, words) in lines.iter().enumerate() {
        let index = u32::try_from(index)?;
        // An msdos table has four primaries; beyond that wic makes the fourth an
        // extended partition and numbers the logical ones from 5.
        let number = if gpt || lines.len() <= 4 || index < 3 {
            index + 1
        } else {
            index + 2
        };
        let option = |name: &str| {
            words
                .iter()
                .position(|w| *w == name)
                .and_then(|i| words.get(i + 1))
                .map(|v| {
                    v.trim_start_matches(&['=', '"'][..])
                        .trim_end_matches('"')
                        .to_owned()
                })
                .or_else(|| {
                    words
                        .iter()
                        .find_map(|w| w.strip_prefix(&format!("{name}=")).map(str::to_owned))
                })
        };
        parts.push(Part {
            number,
            mount: words.get(1).map(|s| (*s).to_owned()).unwrap_or_default(),
            fstype: option("--fstype").context("a wks part without --fstype")?,
            source: option("--source"),
        });
    }
    Ok(parts)
}

/// `[section]` → key → value of an ini file (RAUC's system.conf, a systemd unit; a
/// repeated key keeps its last value).
fn ini(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut sections: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut current = String::new();
    let mut logical = String::new();
    for raw in text.lines() {
        let line = raw.trim();
        if line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(head) = line.strip_suffix('\\') {
            logical.push_str(head);
            logical.push(' ');
            continue;
        }
        logical.push_str(line);
        let line = std::mem::take(&mut logical);
        let line = line.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            name.clone_into(&mut current);
        } else if let Some((key, value)) = line.split_once('=') {
            sections
                .entry(current.clone())
                .or_default()
                .insert(key.trim().to_owned(), value.trim().to_owned());
        }
    }
    sections
}

/// fstab: mount point → (device, fstype, options).
fn fstab(text: &str) -> BTreeMap<String, (String, String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 4).then(|| {
                (
                    f[1].to_owned(),
                    (f[0].to_owned(), f[2].to_owned(), f[3].to_owned()),
                )
            })
        })
        .collect()
}

fn partition_number(device: &str) -> Option<u32> {
    device.strip_prefix("/dev/mmcblk0p")?.parse().ok()
}

/// The mount point (of `mounts`) that holds `path`: the longest prefix.
fn mount_of<'a>(path: &str, mounts: impl Iterator<Item = &'a String>) -> Option<&'a String> {
    mounts
        .filter(|m| {
            path == m.as_str()
                || m.as_str() == "/"
                || path.starts_with(&format!("{}/", m.trim_end_matches('/')))
        })
        .max_by_key(|m| m.len())
}

/// RAUC's slots are the wks's root partitions, the fstab mounts what the wks lays out,
/// and what RAUC and the kiosk keep lies on the data partition.
pub(super) fn layout_agrees(root: &Path) -> Result<()> {
    let read =
        |p: &str| std::fs::read_to_string(root.join(p)).with_context(|| format!("reading {p}"));
    layout_agrees_text(
        &read(SYSTEM_CONF)?,
        &read(WKS)?,
        &read(FSTAB)?,
        &read(KIOSK_UNIT)?,
    )
}

fn layout_agrees_text(system_conf: &str, wks: &str, fstab_text: &str, unit: &str) -> Result<()> {
    let parts = wks_parts(wks)?;
    let part = |n: u32| parts.iter().find(|p| p.number == n);
    let conf = ini(system_conf);
    let system = conf.get("system").context("system.conf has no [system]")?;
    ensure!(
        system.get("bootloader").map(String::as_str) == Some("uboot"),
        "system.conf: bootloader is not uboot"
    );

    // Slots ↔ the wks's root filesystems.
    let roots: BTreeSet<u32> = parts
        .iter()
        .filter(|p| p.mount == "/" && p.source.as_deref() == Some("rootfs"))
        .map(|p| p.number)
        .collect();
    ensure!(
        roots.len() == 2,
        "the wks has {} root partitions, not 2 (A/B)",
        roots.len()
    );
    let mut slot_parts = BTreeSet::new();
    let mut bootnames = BTreeSet::new();
    for (name, slot) in conf.iter().filter(|(n, _)| n.starts_with("slot.rootfs.")) {
        let device = slot
            .get("device")
            .with_context(|| format!("[{name}] has no device"))?;
        let n = partition_number(device)
            .with_context(|| format!("[{name}] device {device} is not a partition of mmcblk0"))?;
        let p =
            part(n).with_context(|| format!("[{name}] {device}: the wks has no partition {n}"))?;
        ensure!(
            roots.contains(&n),
            "[{name}] {device} is partition {n}, which the wks mounts at {:?}, not a root filesystem",
            p.mount
        );
        let kind = slot.get("type").map_or("raw", String::as_str);
        ensure!(
            kind == p.fstype,
            "[{name}] type={kind} but the wks makes partition {n} {}",
            p.fstype
        );
        ensure!(slot_parts.insert(n), "two slots on partition {n}");
        let bootname = slot
            .get("bootname")
            .with_context(|| format!("[{name}] has no bootname"))?;
        ensure!(
            bootnames.insert(bootname.clone()),
            "bootname {bootname} twice"
        );
    }
    ensure!(
        slot_parts == roots,
        "RAUC's slots are on partitions {slot_parts:?}, the wks's root filesystems on {roots:?}"
    );
    ensure!(
        bootnames == BTreeSet::from(["A".to_owned(), "B".to_owned()]),
        "bootnames are {bootnames:?}, not A and B (the U-Boot script knows those)"
    );

    // fstab ↔ wks: every mmcblk0 partition mounted is the one the wks lays out there.
    let mounts = fstab(fstab_text);
    for part in parts.iter().filter(|p| p.mount != "/") {
        let (device, fstype, _) = mounts.get(&part.mount).with_context(|| {
            format!(
                "the fstab does not mount {} (wks partition {})",
                part.mount, part.number
            )
        })?;
        ensure!(
            partition_number(device) == Some(part.number),
            "the fstab mounts {device} at {}, the wks puts it on partition {}",
            part.mount,
            part.number
        );
        ensure!(
            *fstype == part.fstype,
            "the fstab mounts {} as {fstype}, the wks makes it {}",
            part.mount,
            part.fstype
        );
    }
    for (mount, (device, _, _)) in &mounts {
        if let Some(n) = partition_number(device) {
            ensure!(
                part(n).is_some_and(|p| &p.mount == mount),
                "the fstab mounts {device} at {mount}, which the wks does not lay out there"
            );
            ensure!(
                !roots.contains(&n),
                "the fstab mounts root slot {device} at {mount}"
            );
        }
    }
    let (_, _, root_options) = mounts.get("/").context("the fstab has no / entry")?;
    ensure!(
        root_options.split(',').any(|o| o == "ro"),
        "the fstab mounts / read-write (the image is read-only)"
    );

    // What must survive an update lies on the data partition.
    let data = mounts
        .get("/data")
        .context("the fstab does not mount /data")?;
    ensure!(
        partition_number(&data.0).is_some(),
        "/data is not an mmcblk0 partition"
    );
    let data_dir = system
        .get("data-directory")
        .context("system.conf has no data-directory")?;
    let on_data = |path: &str| mount_of(path, mounts.keys()).is_some_and(|m| m == "/data");
    ensure!(
        on_data(data_dir),
        "RAUC's data-directory {data_dir} is not on the /data partition"
    );
    let unit_text = unit;
    let unit = ini(unit);
    let service = unit
        .get("Service")
        .context("the kiosk unit has no [Service]")?;
    for path in service
        .get("ReadWritePaths")
        .context("the kiosk unit has no ReadWritePaths")?
        .split_whitespace()
    {
        ensure!(on_data(path), "the kiosk unit writes {path}, not on /data");
    }
    let config = unit_text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Environment=PORTAL_KIOSK_CONFIG="))
        .context("the kiosk unit does not set PORTAL_KIOSK_CONFIG")?;
    ensure!(
        on_data(config),
        "PORTAL_KIOSK_CONFIG={config} is not on /data"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("xtask sits in the repository root")
            .to_owned()
    }

    #[test]
    fn rauc_wks_and_fstab_agree() {
        layout_agrees(&root()).unwrap();
    }

    const SYSTEM_CONF_OK: &str = "[system]\nbootloader=uboot\ndata-directory=/data/rauc\n\
        [slot.rootfs.0]\ndevice=/dev/mmcblk0p2\ntype=ext4\nbootname=A\n\
        [slot.rootfs.1]\ndevice=/dev/mmcblk0p3\ntype=ext4\nbootname=B\n";
    const WKS_OK: &str = "part /boot --source bootimg_partition --fstype=vfat --label boot\n\
        part / --source rootfs --fstype=ext4 --label rootfs_A\n\
        part / --source rootfs --fstype=ext4 --label rootfs_B\n\
        part /data --fstype=ext4 --label data --fixed-size 256M\n";
    const FSTAB_OK: &str = "/dev/root / auto ro 1 1\n/dev/mmcblk0p1 /boot vfat defaults 0 2\n\
        /dev/mmcblk0p4 /data ext4 defaults 0 2\n";
    const UNIT_OK: &str = "[Service]\nEnvironment=PORTAL_KIOSK_CONFIG=/data/portal/kiosk.toml\n\
        ReadWritePaths=/data/portal\n";

    #[test]
    fn layout_mismatches_are_caught() {
        layout_agrees_text(SYSTEM_CONF_OK, WKS_OK, FSTAB_OK, UNIT_OK).unwrap();
        let cases = [
            (
                SYSTEM_CONF_OK.replace("mmcblk0p3", "mmcblk0p4"),
                WKS_OK.to_owned(),
                FSTAB_OK.to_owned(),
                UNIT_OK.to_owned(),
            ),
            (
                SYSTEM_CONF_OK.to_owned(),
                WKS_OK.to_owned(),
                FSTAB_OK.replace("mmcblk0p4", "mmcblk0p5"),
                UNIT_OK.to_owned(),
            ),
            (
                SYSTEM_CONF_OK.to_owned(),
                WKS_OK.replace("part /data --fstype=ext4", "part /data --fstype=vfat"),
                FSTAB_OK.to_owned(),
                UNIT_OK.to_owned(),
            ),
            (
                SYSTEM_CONF_OK.replace("/data/rauc", "/var/lib/rauc"),
                WKS_OK.to_owned(),
                FSTAB_OK.to_owned(),
                UNIT_OK.to_owned(),
            ),
            (
                SYSTEM_CONF_OK.to_owned(),
                WKS_OK.to_owned(),
                FSTAB_OK.replace(" ro ", " defaults "),
                UNIT_OK.to_owned(),
            ),
            (
                SYSTEM_CONF_OK.to_owned(),
                WKS_OK.to_owned(),
                FSTAB_OK.to_owned(),
                UNIT_OK.replace(
                    "ReadWritePaths=/data/portal",
                    "ReadWritePaths=/var/lib/portal",
                ),
            ),
        ];
        for (conf, wks, fstab, unit) in cases {
            assert!(
                layout_agrees_text(&conf, &wks, &fstab, &unit).is_err(),
                "not caught:\n{conf}\n{wks}\n{fstab}\n{unit}"
            );
        }
    }

    #[test]
    fn msdos_tables_number_logical_partitions_from_five() {
        let wks = format!("{WKS_OK}part /home --fstype=ext4 --label home\n");
        let numbers: Vec<u32> = wks_parts(&wks).unwrap().iter().map(|p| p.number).collect();
        assert_eq!(numbers, [1, 2, 3, 5, 6]);
    }
}
