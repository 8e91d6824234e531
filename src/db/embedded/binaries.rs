//! Finding the PostgreSQL server programs on this machine (`postgres`, `initdb`, and
//! `pg_isready` to tell when the server is up): PATH first, then Debian's
//! `/usr/lib/postgresql/<version>/bin`. Installing them is `db::ensure_postgres_binaries`'s job.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::os_user::is_root;
use super::{EmbeddedError, INSTALL_AS_ROOT, INSTALL_WITH_SUDO};

const DEBIAN_PG_LIB: &str = "/usr/lib/postgresql";

/// The programs the embedded cluster runs, all taken from one folder so that their versions
/// match. `pg_isready` ships with the server packages (Debian's postgresql-NN pulls it in).
const PROGRAMS: [&str; 3] = ["postgres", "initdb", "pg_isready"];

/// Finds the folder with postgres, initdb and pg_isready: first PATH, then the highest version
/// under /usr/lib/postgresql/*/bin.
///
/// On PATH, a folder counts when `postgres` is there. When it is a symlink (as
/// /usr/local/bin/postgres -> /usr/lib/postgresql/15/bin/postgres here), the folder it points
/// into is preferred when it has every program: it also holds psql, pg_dump and the rest, which
/// a PATH folder of a few links may not. Otherwise the PATH folder itself must have them all.
pub fn find_bin_dir() -> Result<PathBuf, EmbeddedError> {
    find_bin_dir_in(
        std::env::var_os("PATH").as_deref(),
        Path::new(DEBIAN_PG_LIB),
    )
    .ok_or(EmbeddedError::BinariesNotFound {
        install: if is_root() {
            INSTALL_AS_ROOT
        } else {
            INSTALL_WITH_SUDO
        },
    })
}

fn find_bin_dir_in(path_var: Option<&OsStr>, debian_lib: &Path) -> Option<PathBuf> {
    let has_server = |dir: &Path| PROGRAMS.iter().all(|name| is_executable(&dir.join(name)));
    for dir in path_var.into_iter().flat_map(std::env::split_paths) {
        if !dir.is_absolute() || !is_executable(&dir.join("postgres")) {
            continue;
        }
        if let Some(real) = fs::canonicalize(dir.join("postgres"))
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            && has_server(&real)
        {
            return Some(real);
        }
        if has_server(&dir) {
            return Some(dir);
        }
    }
    let mut best: Option<(Vec<u32>, PathBuf)> = None;
    for entry in fs::read_dir(debian_lib).ok()?.flatten() {
        let name = entry.file_name();
        let Some(version) = name.to_str().and_then(parse_version) else {
            continue;
        };
        let bin = entry.path().join("bin");
        if has_server(&bin) && best.as_ref().is_none_or(|(v, _)| version > *v) {
            best = Some((version, bin));
        }
    }
    best.map(|(_, bin)| bin)
}

/// "15" -> `[15]`, "9.6" -> `[9, 6]`, so that 15 > 10 > 9.6; anything else is not a version folder.
fn parse_version(name: &str) -> Option<Vec<u32>> {
    name.split('.').map(|part| part.parse().ok()).collect()
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use std::fs::Permissions;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// A scratch folder without extra dev-dependencies (the module must build in usersvc's tree).
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("embedded-unit-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create scratch folder");
        dir
    }

    fn fake_server(bin: &Path) {
        fs::create_dir_all(bin).expect("create bin");
        for name in PROGRAMS {
            fs::write(bin.join(name), "#!/bin/sh\n").expect("write program");
            fs::set_permissions(bin.join(name), Permissions::from_mode(0o755)).expect("chmod");
        }
    }

    #[test]
    fn bin_dir_prefers_path_then_highest_debian_version() {
        let dir = scratch("bins");
        let lib = dir.join("lib");
        for version in ["9.6", "10", "15", "notaversion"] {
            fake_server(&lib.join(version).join("bin"));
        }
        fake_server(&lib.join("16")); // no bin/ inside: not a candidate
        assert_eq!(find_bin_dir_in(None, &lib), Some(lib.join("15/bin")));

        let on_path = dir.join("path");
        fake_server(&on_path);
        let path_var = std::env::join_paths([dir.join("empty"), on_path.clone()]).expect("join");
        assert_eq!(find_bin_dir_in(Some(&path_var), &lib), Some(on_path));

        // A PATH folder of symlinks resolves to the folder they point into, even when it does
        // not link every program.
        let links = dir.join("links");
        fs::create_dir_all(&links).expect("create links");
        for name in ["postgres", "initdb"] {
            std::os::unix::fs::symlink(lib.join("10/bin").join(name), links.join(name))
                .expect("symlink");
        }
        assert_eq!(
            find_bin_dir_in(Some(links.as_os_str()), &lib),
            Some(lib.join("10/bin"))
        );

        // A folder without pg_isready is no candidate.
        let partial = dir.join("partial");
        fake_server(&partial);
        fs::remove_file(partial.join("pg_isready")).expect("remove pg_isready");
        assert_eq!(
            find_bin_dir_in(Some(partial.as_os_str()), &lib),
            Some(lib.join("15/bin"))
        );

        assert_eq!(find_bin_dir_in(None, &dir.join("missing")), None);
        fs::remove_dir_all(&dir).expect("clean up");
    }
}
