//! Which paths under the drop folder are input, what role a file plays in its pair, whose
//! lines it carries, and how archived names avoid each other. Pure functions of paths: the
//! watcher, the scanner and the tests all ask the same questions the same way.

use std::ffi::{OsStr, OsString};
use std::path::{Component, Path, PathBuf};

use reimport_core::Tenant;

/// Imported pairs go to `DIR/processed/<date>/`, refused ones to `DIR/failed/<date>/`.
pub const PROCESSED: &str = "processed";
pub const FAILED: &str = "failed";
/// The daemon's own state (ledger, reports of `--keep-in-place`): a dot-folder, so never input.
pub const STATE_DIR: &str = ".reimport";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Csv,
    Profile,
}

/// Names that browsers, editors and copy tools use while a file is still being written, and
/// hidden files: never input.
pub fn is_temporary_name(name: &OsStr) -> bool {
    let name = name.to_string_lossy();
    let lower = name.to_lowercase();
    name.starts_with('.')
        || name.starts_with("~$")
        || [".tmp", ".part", ".crdownload"]
            .iter()
            .any(|suffix| lower.ends_with(suffix))
}

/// `Csv` for `*.csv`, `Profile` for `*.json` (any case), nothing for other or temporary names.
pub fn role_of(path: &Path) -> Option<Role> {
    let name = path.file_name()?;
    if is_temporary_name(name) {
        return None;
    }
    let extension = path.extension()?.to_string_lossy().to_ascii_lowercase();
    match extension.as_str() {
        "csv" => Some(Role::Csv),
        "json" => Some(Role::Profile),
        _ => None,
    }
}

/// What the two files of a pair share: folder and stem (`DIR/a/export.csv` -> `DIR/a/export`).
pub fn pair_stem(path: &Path) -> PathBuf {
    path.with_extension("")
}

/// `path` relative to the drop folder `root`, if it may hold input: inside `root`, no hidden
/// component, and not under the daemon's own `processed/` and `failed/` folders.
pub fn input_relative<'a>(root: &Path, path: &'a Path) -> Option<&'a Path> {
    let relative = path.strip_prefix(root).ok()?;
    let mut components = relative.components();
    let first = components.next()?;
    if matches!(first, Component::Normal(name) if name == PROCESSED || name == FAILED || name == STATE_DIR) {
        return None;
    }
    let all_visible = relative.components().all(|c| match c {
        Component::Normal(name) => !name.to_string_lossy().starts_with('.'),
        _ => false,
    });
    all_visible.then_some(relative)
}

/// Where the tenant of a file comes from: never from its content.
#[derive(Clone, Debug)]
pub enum TenantPolicy {
    /// `--tenant NAME` (default `default`).
    Fixed(Tenant),
    /// `--tenant-from-subfolder`: the first folder under the drop folder.
    FromSubfolder,
}

impl TenantPolicy {
    /// The tenant of a file at `relative` (to the drop folder), or why it is refused.
    pub fn tenant_for(&self, relative: &Path) -> Result<Tenant, String> {
        match self {
            TenantPolicy::Fixed(tenant) => Ok(tenant.clone()),
            TenantPolicy::FromSubfolder => {
                let mut components = relative.components();
                let (Some(Component::Normal(first)), Some(_)) = (components.next(), components.next()) else {
                    return Err(
                        "with --tenant-from-subfolder, files must be dropped in a tenant's subfolder, \
                                not directly in the drop folder"
                            .into(),
                    );
                };
                Tenant::new(&first.to_string_lossy()).map_err(|e| format!("subfolder {first:?} is no tenant name: {e}"))
            }
        }
    }
}

/// `stem.ext` for `n == 0`, else `stem-n.ext`: the names tried, in order, when a name is taken.
pub fn numbered_name(stem: &OsStr, n: u32, extension: &str) -> OsString {
    let mut name = stem.to_os_string();
    if n > 0 {
        name.push(format!("-{n}"));
    }
    name.push(".");
    name.push(extension);
    name
}

/// The first `n` for which no `numbered_name(stem, n, ext)` of `extensions` is `taken` in `dir`,
/// so the files of one pair keep one suffix. `None` after `limit` tries.
pub fn first_free_number(
    dir: &Path,
    stem: &OsStr,
    extensions: &[&str],
    limit: u32,
    taken: impl Fn(&Path) -> bool,
) -> Option<u32> {
    (0..limit).find(|&n| {
        extensions
            .iter()
            .all(|ext| !taken(&dir.join(numbered_name(stem, n, ext))))
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn temporary_and_hidden_names_are_not_input() {
        for name in [
            "export.csv.tmp",
            "export.csv.part",
            "export.CSV.PART",
            "export.csv.crdownload",
            "~$export.csv",
            ".export.csv",
            ".~lock.export.csv#",
        ] {
            assert!(is_temporary_name(OsStr::new(name)), "{name}");
            assert_eq!(role_of(Path::new(name)), None, "{name}");
        }
        for name in ["export.csv", "tmp.csv", "part-2.json", "my~$file.csv"] {
            assert!(!is_temporary_name(OsStr::new(name)), "{name}");
        }
    }

    #[test]
    fn roles_come_from_the_extension_in_any_case() {
        assert_eq!(role_of(Path::new("d/a.csv")), Some(Role::Csv));
        assert_eq!(role_of(Path::new("d/a.CSV")), Some(Role::Csv));
        assert_eq!(role_of(Path::new("d/a.json")), Some(Role::Profile));
        assert_eq!(role_of(Path::new("d/a.txt")), None);
        assert_eq!(role_of(Path::new("d/csv")), None);
        assert_eq!(pair_stem(Path::new("d/a.csv")), pair_stem(Path::new("d/a.json")));
    }

    #[test]
    fn own_folders_hidden_folders_and_outside_paths_are_not_input() {
        let root = Path::new("/drop");
        assert_eq!(input_relative(root, Path::new("/drop/a.csv")), Some(Path::new("a.csv")));
        assert_eq!(
            input_relative(root, Path::new("/drop/acme/x/a.csv")),
            Some(Path::new("acme/x/a.csv"))
        );
        assert_eq!(
            input_relative(root, Path::new("/drop/processed.csv")),
            Some(Path::new("processed.csv"))
        );
        for excluded in [
            "/drop",
            "/drop/processed",
            "/drop/processed/2026-01-01/a.csv",
            "/drop/failed/2026-01-01/a.csv",
            "/drop/.reimport/ledger.jsonl",
            "/drop/acme/.hidden/a.csv",
            "/drop/.a.csv",
            "/elsewhere/a.csv",
            "/drop/../elsewhere/a.csv",
        ] {
            assert_eq!(input_relative(root, Path::new(excluded)), None, "{excluded}");
        }
    }

    #[test]
    fn tenant_comes_from_the_first_subfolder_or_the_flag() {
        let fixed = TenantPolicy::Fixed(Tenant::new("acme").unwrap());
        assert_eq!(fixed.tenant_for(Path::new("a.csv")).unwrap().as_str(), "acme");
        assert_eq!(fixed.tenant_for(Path::new("other/a.csv")).unwrap().as_str(), "acme");

        let by_folder = TenantPolicy::FromSubfolder;
        assert_eq!(
            by_folder.tenant_for(Path::new("shop-1/a.csv")).unwrap().as_str(),
            "shop-1"
        );
        assert_eq!(
            by_folder
                .tenant_for(Path::new("shop-1/2026/march/a.csv"))
                .unwrap()
                .as_str(),
            "shop-1"
        );
        assert!(by_folder
            .tenant_for(Path::new("a.csv"))
            .unwrap_err()
            .contains("subfolder"));
        assert!(by_folder.tenant_for(Path::new("my shop/a.csv")).is_err());
    }

    #[test]
    fn taken_names_get_the_first_free_suffix_shared_by_the_pair() {
        let dir = Path::new("/p");
        let exts = ["csv", "json", "report.json"];
        let none: HashSet<PathBuf> = HashSet::new();
        assert_eq!(
            first_free_number(dir, OsStr::new("a"), &exts, 100, |p| none.contains(p)),
            Some(0)
        );

        let taken: HashSet<PathBuf> = ["/p/a.csv", "/p/a-1.report.json", "/p/a-2.json"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(
            first_free_number(dir, OsStr::new("a"), &exts, 100, |p| taken.contains(p)),
            Some(3)
        );
        assert_eq!(
            first_free_number(dir, OsStr::new("a"), &exts, 2, |p| taken.contains(p)),
            None
        );
        assert_eq!(
            numbered_name(OsStr::new("a"), 3, "report.json"),
            OsString::from("a-3.report.json")
        );
    }
}
