//! Shared helpers for the benchmarks: generated Matomo "pagetree" exports and their profile.
//!
//! The files are generated, not checked in: a 1M-line export is ~120 MB. The generator is
//! deterministic (a fixed-seed xorshift), so every run of a benchmark reads the same bytes, and
//! it mirrors what Matomo writes: 42 columns, a header, page names with a few accents, URLs,
//! counts, and percentages in columns the profile does not read. Every key is distinct (no
//! merges), so distinct lines = lines.

use std::io::{self, Write};

/// The period every generated file covers: March 2023, 31 days.
pub const PERIOD_DAYS: u32 = 31;

/// The import profile for [`write_pagetree`] files (the shape of `examples/pagetree.json`).
pub const PAGETREE_PROFILE: &str = r#"{
  "skipHeader": true,
  "kind": "pagetree",
  "dimensions": [
    {"idx": 0, "target": "pageinfo_name"},
    {"idx": 1, "target": "pageinfo_url"}
  ],
  "metrics": [
    {"idx": 2, "target": "hit"},
    {"idx": 3, "target": "duration"},
    {"idx": 22, "target": "visitin"},
    {"idx": 25, "target": "visitone"},
    {"idx": 26, "target": "visitout"}
  ],
  "period": {"from": "01/03/2023", "to": "31/03/2023", "scale": "D"}
}
"#;

const HEADER: &str = "Nom,Vues de page uniques,Vues de page,Temps total passé par les visiteurs(en secondes),\
nb_hits_with_time_network,min_time_network,max_time_network,nb_hits_with_time_server,min_time_server,\
max_time_server,nb_hits_with_time_transfer,min_time_transfer,max_time_transfer,\
nb_hits_with_time_dom_processing,min_time_dom_processing,max_time_dom_processing,\
nb_hits_with_time_dom_completion,min_time_dom_completion,max_time_dom_completion,nb_hits_with_time_on_load,\
min_time_on_load,max_time_on_load,Entrées,Actions après être entré ici,\
Temps total passé par les visiteurs(en secondes) après être entré ici,Rebonds,Sorties,\
Visiteursuniques(résumé quotidien),Entréesuniques(résumé quotidien),Sortiesuniques(résumé quotidien),\
Temps moyen de connexion,Moy.heure du serveur,Moy.temps de transfert,Temps moyen de traitement du DOM,\
Temps moyen de génération du DOM,Moy.au temps de chargement,Temps de chargement moyen,Temps moyen sur la page,\
Taux de rebond,Taux de sortie,Méta-données: segment,Cliqué dans les résultats de recherche";

const SECTIONS: [&str; 8] = [
    "produits",
    "blog",
    "aide",
    "compte",
    "catégories",
    "actualités",
    "boutique",
    "événements",
];

/// A deterministic xorshift64*: the same seed gives the same file.
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Writes a pagetree export of `lines` data lines (plus the header) to `out`, UTF-8, `,`.
pub fn write_pagetree(lines: u64, out: &mut impl Write) -> io::Result<()> {
    let mut rng = Xorshift(0x9E37_79B9_7F4A_7C15);
    writeln!(out, "{HEADER}")?;
    for line in 0..lines {
        let section = SECTIONS[rng.below(SECTIONS.len() as u64) as usize];
        let hits = 1 + rng.below(50_000);
        let seconds = hits * (5 + rng.below(120));
        let entries = rng.below(hits + 1);
        let bounces = rng.below(entries + 1);
        let exits = rng.below(hits + 1);
        write!(
            out,
            "/{section}/page-{line},https://example.fr/{section}/page-{line}?ref={},{hits},{seconds}",
            rng.below(1000)
        )?;
        // 18 page-timing columns Matomo writes and the profile does not read.
        for _ in 0..18 {
            write!(out, ",{}", rng.below(1000))?;
        }
        writeln!(
            out,
            ",{entries},{},{},{bounces},{exits},0,0,0,0,0,0,0,0,0,0,0,{} %,{} %,\"pageUrl==x\",0",
            entries * 2,
            seconds / 2,
            rng.below(100),
            rng.below(100)
        )?;
    }
    Ok(())
}

/// Reads the CPU time this process has used so far (user + system), in microseconds, from
/// `/proc/self/stat`; `None` where there is no procfs.
pub fn process_cpu_micros() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces: fields are counted after its closing parenthesis.
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    // Fields 14 and 15 of the man page (utime, stime) are 11 and 12 here (state is field 3).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let ticks = clock_ticks_per_second();
    Some((utime + stime) * 1_000_000 / ticks)
}

/// `getconf CLK_TCK`, 100 on every Linux we run on.
fn clock_ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reimport_core::{read_file, ImportProfile, ProfileLimits, ReadOptions};

    #[test]
    fn generated_file_validates_with_its_profile() {
        let mut csv = Vec::new();
        write_pagetree(1000, &mut csv).unwrap();
        let profile = ImportProfile::from_json(PAGETREE_PROFILE, &ProfileLimits::default()).unwrap();
        let file = read_file(&profile, csv.as_slice(), &ReadOptions::default()).unwrap();
        assert_eq!(file.lines_read(), 1000);
        assert_eq!(file.line_count(), 1000);
        assert_eq!(file.daily_item_count(), 31_000);
        let mut reader = csv::ReaderBuilder::new().from_reader(csv.as_slice());
        assert_eq!(reader.headers().unwrap().len(), 42);
        for record in reader.records() {
            assert_eq!(record.unwrap().len(), 42, "Matomo's 42 columns on every line");
        }
    }

    #[test]
    fn generation_is_deterministic() {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        write_pagetree(100, &mut a).unwrap();
        write_pagetree(100, &mut b).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn reads_cpu_time() {
        assert!(process_cpu_micros().is_some());
    }
}
