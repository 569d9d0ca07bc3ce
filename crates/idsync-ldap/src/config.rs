//! Where the directory is, how to bind, and which flavour it speaks.

use std::fmt;
use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;

/// Active Directory or a generic LDAP server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flavor {
    /// Active Directory (and Samba AD): objectGUID ids, objectSid and
    /// sIDHistory aliases, userAccountControl, ranged `member`.
    #[default]
    Ad,
    /// OpenLDAP, 389-DS and others: entryUUID ids.
    Generic,
}

/// How an Active Directory source reads deltas.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdDelta {
    /// DirSync, or uSNChanged when the account lacks the "Replicating
    /// Directory Changes" right.
    #[default]
    Auto,
    /// DirSync only (the account must hold "Replicating Directory Changes").
    DirSync,
    /// uSNChanged with the show-deleted control (any account that can read
    /// the tombstones in `CN=Deleted Objects`).
    Usn,
}

/// Active Directory target: the password a user account gets, so that it
/// can be enabled. idsync never enables an account that has no password.
///
/// ```toml
/// initial_password = "random"   # needs an ldaps:// url or start_tls = true
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitialPassword {
    /// None: accounts are created disabled (userAccountControl 514), and an
    /// account without a password stays disabled when the source enables
    /// it; the operation's note says it needs a password first.
    #[default]
    None,
    /// A strong random password that nobody is told, to be changed at the
    /// next logon (`pwdLastSet = 0`), set on new accounts and on accounts
    /// without a password when they are enabled (userAccountControl 512).
    /// Users get in through a password reset. It is sent only over ldaps://
    /// or StartTLS, and never logged or reported.
    Random,
}

/// How to reach and read (or write) a directory.
///
/// ```toml
/// url = "ldaps://dc1.acme.test"
/// bind_dn = "CN=idsync,OU=Service,DC=acme,DC=test"
/// password = "${LDAP_PASSWORD}"
/// base_dn = "DC=acme,DC=test"
/// ```
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct LdapConfig {
    /// `ldap://host[:port]` or `ldaps://host[:port]`.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS.
    #[serde(default)]
    pub start_tls: bool,
    /// A CA certificate (PEM) to trust besides the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Verify the server's certificate (default true; turning it off logs a warning).
    #[serde(default = "yes")]
    pub tls_verify: bool,
    /// The DN (or AD user principal name) to bind as.
    pub bind_dn: String,
    /// Its password.
    pub password: SecretString,
    /// The naming context to read and write under.
    pub base_dn: String,
    /// Active Directory or generic LDAP.
    #[serde(default)]
    pub flavor: Flavor,
    /// Active Directory: how deltas are read.
    #[serde(default)]
    pub ad_delta: AdDelta,
    /// Seconds before a connection or an operation times out.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Entries per page of a paged search (AD serves at most 1000).
    #[serde(default = "default_page_size")]
    pub page_size: i32,
    /// The LDAP filter selecting users; a flavour default when unset.
    #[serde(default)]
    pub user_filter: Option<String>,
    /// The LDAP filter selecting groups; a flavour default when unset.
    #[serde(default)]
    pub group_filter: Option<String>,
    /// Attributes to read; every user attribute (`*`) when empty.
    #[serde(default)]
    pub attributes: Vec<String>,
    /// Target: the attribute that keeps the link (`idsync:<profile>:<id>`);
    /// `info` on AD and `description` on generic LDAP when unset.
    #[serde(default)]
    pub link_attribute: Option<String>,
    /// Target: the naming attribute of new entries (`cn` by default).
    #[serde(default = "default_naming")]
    pub naming_attribute: String,
    /// Target: where new entries go when the mapping gives no `container` field.
    #[serde(default)]
    pub default_container: Option<String>,
    /// Target, generic flavour: an attribute set to `disabled` on disabled
    /// accounts (generic LDAP has no standard flag). Without it, the target
    /// cannot disable.
    #[serde(default)]
    pub disabled_attribute: Option<String>,
    /// Target, Active Directory: the password new and enabled accounts get
    /// (none by default: such accounts stay disabled).
    #[serde(default)]
    pub initial_password: InitialPassword,
    /// Target: the most `member` values one modify adds or removes (1000
    /// by default), which is also how many operations the target takes in
    /// one batch. A group's membership changes go out as modifies of up to
    /// this many values. 1000 stays under Active Directory's limits: it
    /// answers at most MaxValRange values of an attribute per read (1500
    /// since Windows Server 2003, 1000 before) and refuses requests larger
    /// than MaxReceiveBuffer (10 MB); `member` is a linked attribute, with
    /// no cap on the values a group holds. slapd takes requests up to
    /// `sockbuf_max_incoming_auth` (4 MiB): 1000 DNs are about 100 KB. A
    /// modify the server refuses as a whole (a value already there or
    /// absent, one member it will not take, an administrative limit) is
    /// sent again in halves, down to the member that fails.
    #[serde(default = "default_members_per_modify")]
    pub members_per_modify: usize,
}

fn yes() -> bool {
    true
}

fn default_timeout() -> u64 {
    30
}

fn default_page_size() -> i32 {
    500
}

fn default_members_per_modify() -> usize {
    1000
}

fn default_naming() -> String {
    "cn".into()
}

impl LdapConfig {
    /// A config with defaults for everything but the connection.
    pub fn new(url: &str, bind_dn: &str, password: &str, base_dn: &str, flavor: Flavor) -> Self {
        LdapConfig {
            url: url.to_owned(),
            start_tls: false,
            ca_file: None,
            tls_verify: true,
            bind_dn: bind_dn.to_owned(),
            password: SecretString::from(password.to_owned()),
            base_dn: base_dn.to_owned(),
            flavor,
            ad_delta: AdDelta::Auto,
            timeout_secs: default_timeout(),
            page_size: default_page_size(),
            user_filter: None,
            group_filter: None,
            attributes: Vec::new(),
            link_attribute: None,
            naming_attribute: default_naming(),
            default_container: None,
            disabled_attribute: None,
            initial_password: InitialPassword::None,
            members_per_modify: default_members_per_modify(),
        }
    }

    /// `Err` when `initial_password` cannot be used with this connection:
    /// it needs Active Directory and TLS (an ldaps:// url or StartTLS), so
    /// that no password crosses the network in the clear.
    pub(crate) fn check_initial_password(&self) -> Result<(), crate::LdapError> {
        if self.initial_password == InitialPassword::None {
            return Ok(());
        }
        if self.flavor != Flavor::Ad {
            return Err(crate::LdapError::Config(
                "initial_password applies to Active Directory only (flavor = \"ad\")".into(),
            ));
        }
        let ldaps = self
            .url
            .get(..8)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("ldaps://"));
        if !ldaps && !self.start_tls {
            return Err(crate::LdapError::Config(format!(
                "initial_password = \"random\" sends passwords to the directory, which needs TLS: {} is neither an ldaps:// url nor used with start_tls = true",
                self.url
            )));
        }
        Ok(())
    }

    /// The user filter in force.
    pub fn users(&self) -> &str {
        self.user_filter.as_deref().unwrap_or(match self.flavor {
            Flavor::Ad => "(&(objectClass=user)(objectCategory=person))",
            Flavor::Generic => "(|(objectClass=inetOrgPerson)(objectClass=posixAccount))",
        })
    }

    /// The group filter in force.
    pub fn groups(&self) -> &str {
        self.group_filter.as_deref().unwrap_or(match self.flavor {
            Flavor::Ad => "(objectClass=group)",
            Flavor::Generic => "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))",
        })
    }

    /// The link attribute in force.
    pub fn link_attr(&self) -> &str {
        self.link_attribute.as_deref().unwrap_or(match self.flavor {
            Flavor::Ad => "info",
            Flavor::Generic => "description",
        })
    }

    /// The timeout of one operation (a search's timer restarts with every
    /// entry that arrives), from `timeout_secs`.
    pub(crate) fn op_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.timeout_secs.max(1))
    }

    /// The id attribute of the flavour.
    pub fn id_attr(&self) -> &'static str {
        match self.flavor {
            Flavor::Ad => "objectGUID",
            Flavor::Generic => "entryUUID",
        }
    }
}

impl fmt::Debug for LdapConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LdapConfig")
            .field("url", &self.url)
            .field("start_tls", &self.start_tls)
            .field("tls_verify", &self.tls_verify)
            .field("bind_dn", &self.bind_dn)
            .field("password", &"<redacted>")
            .field("base_dn", &self.base_dn)
            .field("flavor", &self.flavor)
            .field("initial_password", &self.initial_password)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(extra: serde_json::Value) -> LdapConfig {
        let mut json = serde_json::json!({
            "url": "ldaps://dc1.acme.test", "bind_dn": "idsync@ACME.TEST",
            "password": "x", "base_dn": "DC=acme,DC=test"
        });
        if let (Some(o), Some(extra)) = (json.as_object_mut(), extra.as_object()) {
            o.extend(extra.clone());
        }
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn an_initial_password_needs_active_directory_and_tls() {
        assert_eq!(parsed(serde_json::json!({})).initial_password, InitialPassword::None);
        let random = parsed(serde_json::json!({"initial_password": "random"}));
        assert_eq!(random.initial_password, InitialPassword::Random);
        assert!(random.check_initial_password().is_ok());
        let start_tls =
            parsed(serde_json::json!({"initial_password": "random", "url": "ldap://dc1", "start_tls": true}));
        assert!(start_tls.check_initial_password().is_ok());
        let plain = parsed(serde_json::json!({"initial_password": "random", "url": "LDAP://dc1"}));
        let e = plain.check_initial_password().unwrap_err().into_core("connect");
        assert!(e.stops_run() && e.kind() == idsync_core::ErrorKind::Config, "{e}");
        assert!(e.to_string().contains("needs TLS"), "{e}");
        let generic = parsed(serde_json::json!({"initial_password": "random", "flavor": "generic"}));
        let e = generic.check_initial_password().unwrap_err().into_core("connect");
        assert!(e.to_string().contains("Active Directory only"), "{e}");
        // Without the option, plain LDAP is fine.
        assert!(
            parsed(serde_json::json!({"url": "ldap://dc1"}))
                .check_initial_password()
                .is_ok()
        );
    }
}
