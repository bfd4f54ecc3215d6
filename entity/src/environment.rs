//! What a workload's environment holds. Every workload starts from a cleared environment: none of
//! its runner's variables (settings and secrets such as `DATABASE_URL`, `AMQP_URL`,
//! `ADMIN_PASSWORD` stay out), only `base` and then its spec's own variables. A spec may not set
//! a variable that steers the dynamic loader, the shell or command lookup: its command runs on
//! the host (until sandboxes get their own namespaces), and such a variable would let a tenant
//! choose what code runs there, or where the loader writes.

/// The `PATH` every workload gets: fixed, so that a tenant cannot choose which program a name
/// runs.
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The variables every workload starts with: `PATH` (above), `HOME` (its working directory) and
/// `LANG` (`C.UTF-8`).
pub fn base(working_dir: &str) -> [(&'static str, String); 3] {
    [("PATH", PATH.to_owned()), ("HOME", working_dir.to_owned()), ("LANG", "C.UTF-8".to_owned())]
}

/// Names refused whole: what the dynamic loader and the C library read (glibc's list of
/// variables unsafe for privileged programs, less `TMPDIR` and `TZDIR`), what shells read on
/// start or when they parse, and command lookup.
const REFUSED: [&str; 22] = [
    // The loader and the C library.
    "GCONV_PATH",
    "GETCONF_DIR",
    "GLIBC_TUNABLES",
    "HOSTALIASES",
    "LOCALDOMAIN",
    "LOCPATH",
    "NIS_PATH",
    "NLSPATH",
    "RESOLV_HOST_CONF",
    "RES_OPTIONS",
    // Shells.
    "BASH_ENV",
    "BASHOPTS",
    "BASH_XTRACEFD",
    "CDPATH",
    "ENV",
    "GLOBIGNORE",
    "IFS",
    "PROMPT_COMMAND",
    "PS4",
    "SHELLOPTS",
    // Command lookup, and the home the runner sets.
    "PATH",
    "HOME",
];

/// Name prefixes refused: the loader's (`LD_PRELOAD`, `LD_LIBRARY_PATH`, `LD_DEBUG`, ...), the
/// allocator's (`MALLOC_TRACE` writes a file), bash's exported functions, and this server's own.
const REFUSED_PREFIXES: [&str; 4] = ["LD_", "MALLOC_", "BASH_FUNC_", "TASKQ_"];

/// Why a workload may not set `name`, if it may not.
pub fn refused(name: &str) -> Option<&'static str> {
    let upper = name.to_ascii_uppercase();
    if REFUSED.contains(&upper.as_str()) || REFUSED_PREFIXES.iter().any(|p| upper.starts_with(p)) {
        return Some("it steers the dynamic loader, a shell, command lookup or the server itself");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::refused;

    #[test]
    fn variables_that_steer_the_loader_the_shell_or_lookup_are_refused_and_others_are_not() {
        for name in ["LD_PRELOAD", "ld_debug", "LD_DEBUG_OUTPUT", "PATH", "BASH_ENV", "IFS", "MALLOC_TRACE"] {
            assert!(refused(name).is_some(), "{name}");
        }
        for name in ["BASH_FUNC_f%%", "GCONV_PATH", "TASKQ_WORKLOAD", "ENV", "GLIBC_TUNABLES"] {
            assert!(refused(name).is_some(), "{name}");
        }
        for name in ["GREETING", "LANG", "TZ", "TMPDIR", "PYTHONPATH_X", "MY_PATH", "LDX"] {
            assert_eq!(refused(name), None, "{name}");
        }
    }
}
