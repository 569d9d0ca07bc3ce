//! Starts a throwaway OpenLDAP slapd on 127.0.0.1 with 200 users and 5
//! groups, prints the `source` line that points the quickstart profile at
//! it, and stops it when Enter is pressed. Needs slapd installed
//! (`bash .ci/install`). Run with `cargo run --example test_slapd`.

use idsync_testkit::slapd::{Slapd, SlapdOptions};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let slapd = Slapd::start(SlapdOptions::with_users(200, 5)).await?;
    println!("slapd is listening on {} ({})", slapd.url(), slapd.base_dn());
    println!("In examples/quickstart/idsync.toml, replace the `source` line by:\n");
    println!(
        r#"source = {{ type = "ldap", flavor = "generic", url = "{}", bind_dn = "{}", password = "${{LDAP_PASSWORD}}", base_dn = "{}" }}"#,
        slapd.url(),
        slapd.admin_dn(),
        slapd.base_dn()
    );
    println!("\nthen, in another terminal:\n");
    println!("export LDAP_PASSWORD='{}'", slapd.admin_password());
    println!("cargo run -p idsync-cli -- --config examples/quickstart/idsync.toml sync");
    println!("\nPress Enter to stop slapd.");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(())
}
