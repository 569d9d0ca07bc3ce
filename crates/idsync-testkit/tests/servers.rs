//! The real test servers start, answer, restart, and hold what tests put in them.
#![expect(clippy::unwrap_used, reason = "test code: a failure fails the test")]

use idsync_testkit::slapd::{self, Slapd, SlapdOptions};

#[tokio::test]
async fn slapd_serves_fixture_users_and_survives_a_restart() {
    let t = std::time::Instant::now();
    let Some(mut server) = idsync_testkit::gate("slapd", Slapd::start(SlapdOptions::with_users(5, 2)).await) else {
        return;
    };
    eprintln!("slapd started in {:?} on {}", t.elapsed(), server.url());
    let base = server.base_dn().to_owned();
    let users = server
        .search(&base, "(objectClass=inetOrgPerson)", &["uid", "cn", "entryUUID"])
        .await
        .unwrap();
    assert_eq!(users.len(), 5);
    assert!(users.iter().all(|u| u.has("entryUUID")));
    let zoe = users
        .iter()
        .find(|u| u.first_str("uid").as_deref() == Some("u000002"))
        .unwrap();
    assert!(zoe.first_str("cn").unwrap().starts_with("Zoë"));
    let groups = server
        .search(&server.groups_dn(), "(objectClass=groupOfNames)", &["member"])
        .await
        .unwrap();
    assert_eq!(groups.len(), 2);

    let first = sync_ro(&server, "").await;
    let first_cookie = first
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("# cookie: "))
        .unwrap()
        .to_owned();
    server.ldapadd(&slapd::user_ldif(&base, 5, &[])).await.unwrap();
    server
        .ldapmodify(&format!(
            "dn: {}\nchangetype: modify\nreplace: mail\nmail: new@acme.test\n",
            slapd::user_dn(&base, 0, &[])
        ))
        .await
        .unwrap();
    server.ldapdelete(&slapd::user_dn(&base, 1, &[])).await.unwrap();

    // refreshOnly syncrepl from before the changes: deletes as an ID set
    // (refreshDeletes=1) now, present mode (refreshDeletes=0) after a restart.
    let cookie = sync_ro(&server, &first_cookie).await;
    assert!(cookie.contains("refreshDeletes=1"), "{cookie}");
    let port = server.port();
    let t = std::time::Instant::now();
    server.restart().await.unwrap();
    eprintln!("slapd restarted in {:?}", t.elapsed());
    assert_eq!(server.port(), port);
    let after = sync_ro(&server, &first_cookie).await;
    assert!(after.contains("refreshDeletes=0"), "{after}");
    let users = server
        .search(&base, "(objectClass=inetOrgPerson)", &["uid", "mail"])
        .await
        .unwrap();
    assert_eq!(users.len(), 5);
    let u0 = users
        .iter()
        .find(|u| u.first_str("uid").as_deref() == Some("u000000"))
        .unwrap();
    assert_eq!(u0.first_str("mail").unwrap(), "new@acme.test");
    assert!(
        server
            .search("ou=nowhere,dc=acme,dc=test", "(objectClass=*)", &[])
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn slapd_size_limit_cuts_a_reader_short() {
    let opts = SlapdOptions {
        size_limit: Some(3),
        reader: true,
        ..SlapdOptions::with_users(10, 0)
    };
    let Some(server) = idsync_testkit::gate("slapd", Slapd::start(opts).await) else {
        return;
    };
    let reader = idsync_testkit::ldif_cli::LdapCli {
        url: server.url(),
        bind_dn: server.reader_dn().unwrap(),
        password: server.reader_password().to_owned(),
        env: Vec::new(),
    };
    let err = reader.search(server.base_dn(), "(uid=*)", &["uid"]).await.unwrap_err();
    assert_eq!(err.code, Some(4), "{err}");
    // The rootdn has no limit.
    assert_eq!(
        server
            .search(server.base_dn(), "(uid=*)", &["uid"])
            .await
            .unwrap()
            .len(),
        10
    );
    // Anonymous cannot read.
    let anon = idsync_testkit::slapd::Slapd::url(&server);
    let out = idsync_testkit::ldif_cli::run_raw(
        "ldapsearch",
        &["-x", "-LLL", "-H", &anon, "-b", server.base_dn(), "(uid=*)", "uid"],
        None,
    )
    .await
    .unwrap();
    assert!(idsync_testkit::ldif_cli::parse_ldif(&out.stdout).is_empty());
}

#[tokio::test]
async fn slapd_speaks_ldaps_and_starttls_with_its_test_ca() {
    let opts = SlapdOptions {
        tls: true,
        ..SlapdOptions::with_users(2, 0)
    };
    let Some(server) = idsync_testkit::gate("slapd", Slapd::start(opts).await) else {
        return;
    };
    let ca = server.ca_file().unwrap().to_string_lossy().into_owned();
    let mut cli = server.admin_cli();
    cli.env = vec![
        ("LDAPTLS_CACERT".into(), ca.clone()),
        ("LDAPTLS_REQCERT".into(), "demand".into()),
    ];
    cli.url = server.ldaps_url().unwrap();
    assert_eq!(
        cli.search(server.base_dn(), "(uid=*)", &["uid"]).await.unwrap().len(),
        2
    );
    // StartTLS on the plain port (-ZZ: fail unless TLS is up).
    let out = idsync_testkit::ldif_cli::run(
        "env",
        &[
            &format!("LDAPTLS_CACERT={ca}"),
            "ldapsearch",
            "-ZZ",
            "-x",
            "-LLL",
            "-H",
            &server.url(),
            "-D",
            &server.admin_dn(),
            "-w",
            server.admin_password(),
            "-b",
            server.base_dn(),
            "(uid=*)",
            "uid",
        ],
        None,
    )
    .await
    .unwrap();
    assert_eq!(idsync_testkit::ldif_cli::parse_ldif(&out).len(), 2);
}

#[tokio::test]
#[ignore = "slow: loads 100k users (run with --ignored to measure)"]
async fn slapd_loads_100k_users() {
    let t = std::time::Instant::now();
    let opts = SlapdOptions::with_users(100_000, 200);
    let generated = t.elapsed();
    let Some(server) = idsync_testkit::gate("slapd", Slapd::start(opts).await) else {
        return;
    };
    eprintln!(
        "generated in {generated:?}, slapadd + start in {:?}",
        t.elapsed() - generated
    );
    let t = std::time::Instant::now();
    let n = server
        .search(server.base_dn(), "(objectClass=inetOrgPerson)", &["1.1"])
        .await
        .unwrap()
        .len();
    eprintln!("ldapsearch of {n} entries in {:?}", t.elapsed());
    assert_eq!(n, 100_000);
}

#[tokio::test]
async fn samba_holds_users_added_to_a_unique_ou() {
    let t = std::time::Instant::now();
    let Some(dc) = idsync_testkit::gate("samba AD DC", idsync_testkit::samba::samba().await) else {
        return;
    };
    eprintln!("samba ready in {:?} (pid {:?})", t.elapsed(), dc.pid());
    let ou = dc.unique_ou("t").await.unwrap();
    let t = std::time::Instant::now();
    let dns = dc.add_users(&ou, 3).await.unwrap();
    eprintln!("3 AD users added in {:?}", t.elapsed());
    let users = dc
        .search(
            &ou,
            "(objectClass=user)",
            &[
                "objectGUID",
                "objectSid",
                "userAccountControl",
                "sAMAccountName",
                "givenName",
                "uSNChanged",
            ],
        )
        .await
        .unwrap();
    assert_eq!(users.len(), 3);
    for u in &users {
        assert!(dns.contains(&u.dn), "{} not in {dns:?}", u.dn);
        assert_eq!(u.get("objectGUID").len(), 1);
        assert_eq!(u.get("objectGUID")[0].len(), 16);
        assert_eq!(u.first_str("userAccountControl").as_deref(), Some("546"));
        assert!(u.has("objectSid") && u.has("uSNChanged"));
    }
    assert!(users.iter().any(|u| u.first_str("givenName").as_deref() == Some("Zoë")));

    let group = dc
        .add_group(&ou, &format!("g{}", idsync_testkit::samba::random_tag()), &dns[..2])
        .await
        .unwrap();
    let g = dc.entry(&group, &["member"]).await.unwrap().unwrap();
    assert_eq!(g.get("member").len(), 2);
    dc.ldapmodify(&format!(
        "dn: {}\nchangetype: modify\nreplace: mail\nmail: changed@example.test\n",
        dns[0]
    ))
    .await
    .unwrap();
    assert_eq!(
        dc.entry(&dns[0], &["mail"])
            .await
            .unwrap()
            .unwrap()
            .first_str("mail")
            .as_deref(),
        Some("changed@example.test")
    );
    dc.ldapdelete(&dns[2]).await.unwrap();
    assert!(dc.entry(&dns[2], &[]).await.unwrap().is_none());
    dc.delete_tree(&ou).await.unwrap();
    assert!(dc.entry(&ou, &[]).await.unwrap().is_none());
}

/// `ldapsearch -E sync=ro[/COOKIE]` output (comments included).
async fn sync_ro(server: &Slapd, cookie: &str) -> String {
    let control = if cookie.is_empty() {
        "sync=ro".to_owned()
    } else {
        format!("sync=ro/{cookie}")
    };
    let url = server.url();
    let admin = server.admin_dn();
    let args = [
        "-x",
        "-H",
        &url,
        "-D",
        &admin,
        "-w",
        server.admin_password(),
        "-b",
        server.base_dn(),
        "-E",
        &control,
        "(objectClass=*)",
        "1.1",
    ];
    let out = idsync_testkit::ldif_cli::run("ldapsearch", &args, None).await.unwrap();
    String::from_utf8(out).unwrap()
}
