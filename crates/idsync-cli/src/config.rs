//! The profile file: a TOML document with the profile (scope, mapping,
//! rules), the source, the target, where state is kept and who is told of
//! failures. `${NAME}` is replaced by the environment variable NAME, so
//! secrets stay out of the file; relative paths are relative to the file.

use std::path::{Path, PathBuf};

use idsync::Profile;
use serde::Deserialize;

use crate::duration::parse_duration;

/// A whole profile file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    /// Scope, mapping and rules.
    pub profile: Profile,
    /// The authoritative directory.
    pub source: SourceConfig,
    /// The application.
    pub target: TargetConfig,
    /// Where the cursor, the retry list and the history are kept.
    #[serde(default)]
    pub state: StateConfig,
    /// Who is told when a run fails.
    #[serde(default)]
    pub notify: NotifyConfig,
    /// How runs are applied.
    #[serde(default)]
    pub engine: EngineConfig,
    /// When `idsync worker` runs the profile (default: every 30 minutes).
    #[serde(default)]
    pub schedule: crate::schedule::ScheduleConfig,
}

/// The source, by type.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum SourceConfig {
    /// An LDIF export.
    Ldif(idsync::file::LdifConfig),
    /// A CSV feed.
    Csv(idsync::file::CsvConfig),
    /// A SCIM 2.0 service read as a directory.
    Scim(Box<idsync::scim::ScimConfig>),
    /// Active Directory or LDAP.
    Ldap(Box<idsync::ldap::LdapConfig>),
    /// JumpCloud (HR-driven, seed 003).
    Jumpcloud(Box<idsync::jumpcloud::JumpCloudConfig>),
    /// Any REST/JSON API described by configuration.
    Rest(Box<idsync::rest::RestConfig>),
}

/// The target, by type.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum TargetConfig {
    /// A SCIM 2.0 service provider.
    Scim(Box<idsync::scim::ScimConfig>),
    /// Active Directory or LDAP (HR-driven provisioning, seed 003).
    Ldap(Box<idsync::ldap::LdapConfig>),
    /// Tables in SQLite or PostgreSQL: the application's own user store.
    Sql(Box<SqlTarget>),
    /// JumpCloud system users and user groups.
    Jumpcloud(Box<idsync::jumpcloud::JumpCloudConfig>),
    /// Any REST/JSON API described by configuration.
    Rest(Box<idsync::rest::RestConfig>),
}

/// A SQL target: where the database is and how its tables are laid out.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SqlTarget {
    /// `sqlite://app.db` (a relative path is relative to the profile file;
    /// the file is created if missing) or `postgres://user:${PASSWORD}@host/db`.
    pub url: SqlUrl,
    /// Tables and columns (`[target.tables.users]` …; default: the
    /// `idsync_users`, `idsync_groups`, `idsync_members` schema, created if
    /// missing).
    #[serde(default)]
    pub tables: idsync::sql::SqlTargetConfig,
    /// The most operations applied in one transaction (default 500), as
    /// `tables.batch` but without restating the tables.
    pub batch: Option<usize>,
}

/// A database URL; it may hold a password, so it is never printed.
#[derive(Deserialize)]
#[serde(transparent)]
pub(crate) struct SqlUrl(pub secrecy::SecretString);

impl std::fmt::Debug for SqlUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqlUrl(..)")
    }
}

impl SqlUrl {
    /// The URL, to connect with.
    pub(crate) fn expose(&self) -> &str {
        use secrecy::ExposeSecret as _;
        self.0.expose_secret()
    }

    /// Makes a relative SQLite path relative to `base`, and has a missing
    /// SQLite file created (unless the URL says otherwise).
    fn resolve(&mut self, base: &Path) {
        if let Some(rest) = self.expose().strip_prefix("sqlite://")
            && !rest.starts_with(':')
        {
            let (path, query) = rest.split_once('?').map_or((rest, None), |(p, q)| (p, Some(q)));
            let url = format!("sqlite://{}?{}", base.join(path).display(), query.unwrap_or("mode=rwc"));
            self.0 = url.into();
        }
    }
}

/// Where state is kept.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum StateConfig {
    /// JSON files in a folder (and the history as JSON lines).
    Json {
        /// The folder.
        path: PathBuf,
    },
    /// Tables in SQLite or PostgreSQL (`idsync_state`, `idsync_history`,
    /// `idsync_leases`). On PostgreSQL several `idsync` processes on
    /// several machines share profiles safely: each run holds a lease.
    Sql {
        /// As for the SQL target; it may be the same database.
        url: SqlUrl,
        /// How long a run's lease lasts unless renewed ("2m"): a worker
        /// that dies holds its profiles this long.
        #[serde(default = "default_lease")]
        lease: String,
    },
}

fn default_lease() -> String {
    "2m".into()
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig::Json {
            path: PathBuf::from(".idsync"),
        }
    }
}

/// Notification of admins when a run fails (seed 000).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NotifyConfig {
    /// POSTed the run's summary as JSON.
    pub webhook: Option<url::Url>,
    /// Run with the summary as JSON on standard input: program and arguments.
    pub command: Option<Vec<String>>,
}

/// Engine options.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct EngineConfig {
    /// Operations applied at once.
    pub concurrency: usize,
    /// A full read at least this often ("24h"), even when deltas work.
    pub full_every: Option<String>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            concurrency: 8,
            full_every: Some("24h".into()),
        }
    }
}

impl EngineConfig {
    /// The options for the engine.
    pub(crate) fn options(&self) -> Result<idsync::EngineOptions, String> {
        let full_every = match &self.full_every {
            None => None,
            Some(s) => Some(parse_duration("engine.full_every", s)?),
        };
        Ok(idsync::EngineOptions {
            concurrency: self.concurrency.max(1),
            full_every,
            ..idsync::EngineOptions::default()
        })
    }
}

/// Loads and checks a profile file. Errors name the file, the place and
/// what was expected.
pub(crate) fn load(path: &Path) -> Result<Config, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    parse(
        &text,
        &path.display().to_string(),
        path.parent().unwrap_or(Path::new(".")),
    )
}

/// Checks the text of a profile file; `name` says where it came from (in
/// errors), relative paths are relative to `base`.
pub(crate) fn parse(text: &str, name: &str, base: &Path) -> Result<Config, String> {
    let text = substitute_env(text).map_err(|e| format!("{name}: {e}"))?;
    let mut config: Config = toml::from_str(&text).map_err(|e| format!("{name}: {e}"))?;
    config.schedule.check().map_err(|e| format!("{name}: {e}"))?;
    config.resolve_paths(base);
    Ok(config)
}

/// A database URL given on the command line: a relative SQLite path is
/// relative to the current folder, and the file is created if missing.
pub(crate) fn state_url(url: &str) -> SqlUrl {
    let mut url = SqlUrl(url.to_owned().into());
    url.resolve(Path::new("."));
    url
}

impl Config {
    /// What the source is, for the worker's per-source cap: the host and
    /// port of a server, or the path of a file.
    pub(crate) fn source_key(&self) -> String {
        let host = |u: &url::Url| match (u.host_str(), u.port_or_known_default()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => u.to_string(),
        };
        match &self.source {
            SourceConfig::Ldif(c) => format!("file:{}", c.path.display()),
            SourceConfig::Csv(c) => format!("file:{}", c.path.display()),
            SourceConfig::Scim(c) => host(&c.base_url),
            SourceConfig::Jumpcloud(c) => host(&c.base_url),
            SourceConfig::Rest(c) => host(&c.base_url),
            SourceConfig::Ldap(c) => url::Url::parse(&c.url)
                .map(|u| host(&u))
                .unwrap_or_else(|_| c.url.clone()),
        }
    }

    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        match &mut self.source {
            SourceConfig::Ldif(c) => fix(&mut c.path),
            SourceConfig::Csv(c) => fix(&mut c.path),
            SourceConfig::Scim(_) | SourceConfig::Ldap(_) | SourceConfig::Jumpcloud(_) | SourceConfig::Rest(_) => {}
        }
        if let TargetConfig::Sql(c) = &mut self.target {
            c.url.resolve(base);
        }
        match &mut self.state {
            StateConfig::Json { path } => fix(path),
            StateConfig::Sql { url, .. } => url.resolve(base),
        }
    }
}

/// Replaces `${NAME}` by the environment variable NAME (`$$` is a `$`),
/// except on comment lines.
fn substitute_env(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    for (n, line) in text.split_inclusive('\n').enumerate() {
        if line.trim_start().starts_with('#') {
            out.push_str(line); // comments keep their `${…}` as written
            continue;
        }
        let mut rest = line;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            if let Some(tail) = after.strip_prefix('$') {
                out.push('$');
                rest = tail;
            } else if let Some(tail) = after.strip_prefix('{') {
                let end = tail
                    .find('}')
                    .ok_or_else(|| format!("line {}: '${{' without '}}'", n + 1))?;
                let name = &tail[..end];
                let value = std::env::var(name).map_err(|_| {
                    format!(
                        "line {}: environment variable {name} is not set (used as ${{{name}}})",
                        n + 1
                    )
                })?;
                // The value goes into a TOML string: escape what would end it.
                out.push_str(&value.replace('\\', "\\\\").replace('"', "\\\""));
                rest = &tail[end + 1..];
            } else {
                out.push('$');
                rest = after;
            }
        }
        out.push_str(rest);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_variables_are_substituted_and_missing_ones_named() {
        // SAFETY: no other thread of this test binary reads or writes this variable.
        let name = "IDSYNC_TEST_TOKEN_SUBST";
        unsafe { std::env::set_var(name, "s3cr\"t") };
        assert_eq!(
            substitute_env("token = \"${IDSYNC_TEST_TOKEN_SUBST}\" # $$5\n").unwrap(),
            "token = \"s3cr\\\"t\" # $5\n"
        );
        assert_eq!(
            substitute_env("  # password = \"${IDSYNC_SURELY_UNSET_VAR}\"\n").unwrap(),
            "  # password = \"${IDSYNC_SURELY_UNSET_VAR}\"\n"
        );
        let e = substitute_env("a = 1\nb = \"${IDSYNC_SURELY_UNSET_VAR}\"\n").unwrap_err();
        assert_eq!(
            e,
            "line 2: environment variable IDSYNC_SURELY_UNSET_VAR is not set (used as ${IDSYNC_SURELY_UNSET_VAR})"
        );
    }
}
