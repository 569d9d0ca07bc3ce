//! The target behaviour suite.

use std::sync::Arc;

use futures::TryStreamExt;
use idsync_core::memory::MemorySource;
use idsync_core::{
    Engine, ExternalId, FieldChange, Fields, Link, Lookup, MemoryStateStore, ObjectKind, Profile, ProfileId,
    RunOptions, SourceObject, Target, TargetAccount, TargetId, TargetOp,
};

use super::{Report, ensure, step};

/// What the suite needs to know about a target: the fields it accepts, and
/// a profile whose mapping fills them from a directory the suite builds.
#[derive(Clone, Debug)]
pub struct Fixture {
    /// A prefix unique to this run, put into every name the suite creates.
    pub prefix: String,
    /// Fields of a user `n` (must include `correlation_field`).
    pub user_fields: fn(prefix: &str, n: u32) -> Fields,
    /// Fields of a group `n`.
    pub group_fields: fn(prefix: &str, n: u32) -> Fields,
    /// A user field that [`Lookup::Field`] can search (userName, email, …).
    pub correlation_field: String,
    /// A user field the suite may change with an update.
    pub updatable_field: String,
    /// A profile for the engine check; its mapping must map the directory
    /// of [`directory`] (attributes `uid`, `givenName`, `sn`, `mail`, `cn`)
    /// into this target's fields. Its id is replaced by a fresh one.
    pub profile: Profile,
}

impl Fixture {
    fn link(&self, profile: ProfileId, n: u32) -> Link {
        Link {
            profile,
            external: ExternalId(format!("{}-ext-{n}", self.prefix)),
        }
    }
}

/// The directory the engine check syncs: 3 users and a group of two.
pub fn directory(prefix: &str) -> Vec<SourceObject> {
    let user = |n: u32, given: &str| {
        SourceObject::new(format!("{prefix}-u{n}"), ObjectKind::User)
            .with("uid", format!("{prefix}-user{n}"))
            .with("givenName", given)
            .with("sn", format!("Tester{n}"))
            .with("mail", format!("{prefix}-user{n}@example.test"))
    };
    vec![
        user(1, "Ann"),
        user(2, "Bob"),
        user(3, "Zoë"),
        SourceObject::new(format!("{prefix}-g1"), ObjectKind::Group)
            .with("cn", format!("{prefix}-group1"))
            .with_member(format!("{prefix}-u1"))
            .with_member(format!("{prefix}-u2")),
    ]
}

async fn linked(t: &dyn Target, profile: ProfileId) -> Result<Vec<TargetAccount>, String> {
    step(
        "linked()",
        async { t.linked(profile).await?.try_collect::<Vec<_>>().await }.await,
    )
}

async fn create(t: &dyn Target, kind: ObjectKind, link: &Link, fields: Fields) -> Result<TargetId, String> {
    let applied = step(
        "create",
        t.apply(&TargetOp::Create {
            kind,
            link: link.clone(),
            fields,
        })
        .await,
    )?;
    applied.target.ok_or_else(|| "create returned no target id".to_owned())
}

/// What a target does by its own rules, which the suite then expects.
#[derive(Clone, Copy, Debug, Default)]
pub struct Expect {
    /// A user account needs a password before it can be enabled, and the
    /// target gives it none (Active Directory without an initial password):
    /// new accounts start disabled, an enable leaves them disabled and
    /// says why in its note, and the engine plans exactly those enables
    /// again on every run.
    pub enable_needs_password: bool,
}

/// Runs every check the target's capabilities allow. (An `Arc`, because
/// the last check hands the target to an engine.)
pub async fn run(target: Arc<dyn Target>, fx: &Fixture) -> Report {
    run_with(target, fx, Expect::default()).await
}

/// [`run`], for a target with its own rules.
pub async fn run_with(target: Arc<dyn Target>, fx: &Fixture, expect: Expect) -> Report {
    let t = target.as_ref();
    let caps = t.capabilities();
    let mut r = Report::new(t.backend());
    r.check("create_twice_links_once", create_twice_links_once(t, fx, expect))
        .await;
    r.check(
        "update_changes_only_the_given_field",
        update_changes_only_the_given_field(t, fx),
    )
    .await;
    r.check(
        "lookups_find_by_field_and_by_external_id",
        lookups_find_by_field_and_by_external_id(t, fx),
    )
    .await;
    r.check(
        "set_link_moves_the_account_to_another_profile",
        set_link_moves_the_account(t, fx),
    )
    .await;
    r.check_if(
        caps.disable,
        "no disable capability",
        "disable_keeps_the_account",
        disable_keeps_the_account(t, fx, expect),
    )
    .await;
    r.check_if(
        caps.groups,
        "no groups capability",
        "membership_changes_are_deltas",
        membership_changes_are_deltas(t, fx),
    )
    .await;
    r.check_if(
        caps.delete,
        "no delete capability",
        "delete_removes_the_account",
        delete_removes_the_account(t, fx),
    )
    .await;
    // A leaver can be disabled only by a target that disables, and only
    // once an account was ever enabled.
    let no_leaver = if !caps.disable {
        Some("no disable capability")
    } else if expect.enable_needs_password {
        Some("accounts without a password are never enabled, so none is disabled")
    } else {
        None
    };
    let (converges, leaver) = engine_runs(target.clone(), fx, expect, no_leaver.is_none()).await;
    r.check("an_engine_run_converges", async { converges }).await;
    r.check_if(
        no_leaver.is_none(),
        no_leaver.unwrap_or_default(),
        "an_engine_run_disables_a_leaver",
        async { leaver },
    )
    .await;
    r
}

async fn create_twice_links_once(t: &dyn Target, fx: &Fixture, expect: Expect) -> Result<(), String> {
    let profile = ProfileId::new_random();
    let link = fx.link(profile, 1);
    let first = create(t, ObjectKind::User, &link, (fx.user_fields)(&fx.prefix, 1)).await?;
    let second = create(t, ObjectKind::User, &link, (fx.user_fields)(&fx.prefix, 1)).await?;
    ensure(first == second, || {
        format!("second create made another account: {first} then {second}")
    })?;
    let accounts = linked(t, profile).await?;
    ensure(accounts.len() == 1, || {
        format!("linked() lists {} accounts, expected 1", accounts.len())
    })?;
    let a = &accounts[0];
    ensure(a.link.as_ref() == Some(&link), || {
        format!("link is {:?}, expected {link}", a.link)
    })?;
    for (k, v) in (fx.user_fields)(&fx.prefix, 1) {
        ensure(a.fields.get(&k) == Some(&v), || {
            format!("field {k}: got {:?}, expected {v:?}", a.fields.get(&k))
        })?;
    }
    ensure(a.enabled != expect.enable_needs_password, || {
        format!("a new account is enabled = {}", a.enabled)
    })
}

async fn update_changes_only_the_given_field(t: &dyn Target, fx: &Fixture) -> Result<(), String> {
    let profile = ProfileId::new_random();
    let fields = (fx.user_fields)(&fx.prefix, 2);
    let id = create(t, ObjectKind::User, &fx.link(profile, 2), fields.clone()).await?;
    let field = fx.updatable_field.clone();
    let new = format!("{}-changed", fx.prefix);
    let change = FieldChange {
        field: field.clone(),
        old: fields.get(&field).cloned(),
        new: Some(new.clone()),
    };
    step(
        "update",
        t.apply(&TargetOp::Update {
            target: id,
            kind: ObjectKind::User,
            changes: vec![change],
        })
        .await,
    )?;
    let a = linked(t, profile).await?.pop().ok_or("the account is gone")?;
    ensure(a.fields.get(&field) == Some(&new), || {
        format!("{field} is {:?}, expected {new:?}", a.fields.get(&field))
    })?;
    for (k, v) in fields.iter().filter(|(k, _)| **k != field) {
        ensure(a.fields.get(k) == Some(v), || {
            format!("{k} changed to {:?} though only {field} was updated", a.fields.get(k))
        })?;
    }
    Ok(())
}

async fn lookups_find_by_field_and_by_external_id(t: &dyn Target, fx: &Fixture) -> Result<(), String> {
    let profile = ProfileId::new_random();
    let link = fx.link(profile, 3);
    let fields = (fx.user_fields)(&fx.prefix, 3);
    let id = create(t, ObjectKind::User, &link, fields.clone()).await?;
    let value = fields
        .get(&fx.correlation_field)
        .cloned()
        .ok_or("the fixture lacks the correlation field")?;
    let by_field = step(
        "lookup by field",
        t.lookup(&[Lookup::Field {
            kind: ObjectKind::User,
            field: fx.correlation_field.clone(),
            value: value.to_uppercase(),
        }])
        .await,
    )?;
    ensure(by_field.iter().any(|a| a.id == id), || {
        format!("lookup of {value:?} (any case) did not find {id}: {by_field:?}")
    })?;
    let by_external = step(
        "lookup by external id",
        t.lookup(&[Lookup::External {
            kind: ObjectKind::User,
            external: link.external.clone(),
        }])
        .await,
    )?;
    ensure(by_external.len() == 1 && by_external[0].id == id, || {
        format!("lookup of {} found {by_external:?}", link.external)
    })?;
    let none = step(
        "lookup of nothing",
        t.lookup(&[Lookup::External {
            kind: ObjectKind::User,
            external: ExternalId(format!("{}-nobody", fx.prefix)),
        }])
        .await,
    )?;
    ensure(none.is_empty(), || format!("lookup of an unknown id found {none:?}"))
}

async fn set_link_moves_the_account(t: &dyn Target, fx: &Fixture) -> Result<(), String> {
    let (old, new) = (ProfileId::new_random(), ProfileId::new_random());
    let id = create(t, ObjectKind::User, &fx.link(old, 4), (fx.user_fields)(&fx.prefix, 4)).await?;
    let link = fx.link(new, 5);
    step(
        "set link",
        t.apply(&TargetOp::SetLink {
            target: id.clone(),
            kind: ObjectKind::User,
            link: link.clone(),
        })
        .await,
    )?;
    ensure(linked(t, old).await?.is_empty(), || {
        "the old profile still lists the account".into()
    })?;
    let now = linked(t, new).await?;
    ensure(
        now.len() == 1 && now[0].id == id && now[0].link.as_ref() == Some(&link),
        || format!("new profile lists {now:?}"),
    )
}

async fn disable_keeps_the_account(t: &dyn Target, fx: &Fixture, expect: Expect) -> Result<(), String> {
    let profile = ProfileId::new_random();
    let id = create(
        t,
        ObjectKind::User,
        &fx.link(profile, 6),
        (fx.user_fields)(&fx.prefix, 6),
    )
    .await?;
    let set = |enabled| TargetOp::SetEnabled {
        target: id.clone(),
        kind: ObjectKind::User,
        enabled,
    };
    step("disable", t.apply(&set(false)).await)?;
    let a = linked(t, profile).await?;
    ensure(a.len() == 1 && !a[0].enabled, || format!("after disable: {a:?}"))?;
    let enabled = step("enable", t.apply(&set(true)).await)?;
    let a = linked(t, profile).await?;
    if expect.enable_needs_password {
        ensure(a.len() == 1 && !a[0].enabled, || {
            format!("enabled without a password: {a:?}")
        })?;
        ensure(enabled.note.is_some(), || {
            "an enable left undone says nothing about it".into()
        })
    } else {
        ensure(a.len() == 1 && a[0].enabled, || format!("after enable: {a:?}"))
    }
}

async fn membership_changes_are_deltas(t: &dyn Target, fx: &Fixture) -> Result<(), String> {
    let profile = ProfileId::new_random();
    let u1 = create(
        t,
        ObjectKind::User,
        &fx.link(profile, 7),
        (fx.user_fields)(&fx.prefix, 7),
    )
    .await?;
    let u2 = create(
        t,
        ObjectKind::User,
        &fx.link(profile, 8),
        (fx.user_fields)(&fx.prefix, 8),
    )
    .await?;
    let g = create(
        t,
        ObjectKind::Group,
        &fx.link(profile, 9),
        (fx.group_fields)(&fx.prefix, 9),
    )
    .await?;
    let add = |m: &TargetId| TargetOp::AddMember {
        group: g.clone(),
        member: m.clone(),
    };
    let remove = |m: &TargetId| TargetOp::RemoveMember {
        group: g.clone(),
        member: m.clone(),
    };
    step("add member", t.apply(&add(&u1)).await)?;
    step(
        "add the same member again (counts as success)",
        t.apply(&add(&u1)).await,
    )?;
    step("add member", t.apply(&add(&u2)).await)?;
    step("remove member", t.apply(&remove(&u1)).await)?;
    step("remove a non-member (counts as success)", t.apply(&remove(&u1)).await)?;
    let group = linked(t, profile)
        .await?
        .into_iter()
        .find(|a| a.id == g)
        .ok_or("the group is not listed")?;
    ensure(group.kind == ObjectKind::Group, || {
        format!("{g} is listed as a {}", group.kind)
    })?;
    ensure(group.members == vec![u2.clone()], || {
        format!("members are {:?}, expected [{u2}]", group.members)
    })
}

async fn delete_removes_the_account(t: &dyn Target, fx: &Fixture) -> Result<(), String> {
    let profile = ProfileId::new_random();
    let id = create(
        t,
        ObjectKind::User,
        &fx.link(profile, 10),
        (fx.user_fields)(&fx.prefix, 10),
    )
    .await?;
    step(
        "delete",
        t.apply(&TargetOp::Delete {
            target: id,
            kind: ObjectKind::User,
        })
        .await,
    )?;
    let left = linked(t, profile).await?;
    ensure(left.is_empty(), || format!("still listed after delete: {left:?}"))
}

/// Engine runs over [`directory`]: the first creates, a second (full) one
/// must be empty (`an_engine_run_converges`); then, with `leaver`, a user
/// leaves and must be disabled (`an_engine_run_disables_a_leaver`).
async fn engine_runs(
    target: Arc<dyn Target>,
    fx: &Fixture,
    expect: Expect,
    leaver: bool,
) -> (Result<(), String>, Result<(), String>) {
    let t = target.clone();
    let mut profile = fx.profile.clone();
    profile.id = ProfileId::new_random();
    let prefix = format!("{}-e", fx.prefix);
    let directory = directory(&prefix);
    let users = directory.iter().filter(|o| o.kind == ObjectKind::User).count();
    let source = MemorySource::with_objects(directory);
    let engine = Engine::new(
        profile.clone(),
        Arc::new(source.clone()),
        target,
        Arc::new(MemoryStateStore::new()),
    );
    let converges = converges(&engine, t.as_ref(), users, expect).await;
    if converges.is_err() || !leaver {
        let leaver = Err("not run: the engine run before it did not converge".into());
        return (converges, leaver);
    }
    let leaver = format!("{prefix}-u3");
    source.delete(&leaver);
    let disabled = async {
        let run = step("the run after the leaver", engine.run(&RunOptions::default()).await)?;
        let accounts = linked(t.as_ref(), profile.id).await?;
        let gone = accounts
            .iter()
            .find(|a| a.link.as_ref().is_some_and(|l| l.external.0 == leaver));
        ensure(gone.is_some_and(|a| !a.enabled), || {
            format!("after the leaver: {}\n{accounts:?}", run.plan)
        })
    }
    .await;
    (converges, disabled)
}

async fn converges(engine: &Engine, t: &dyn Target, users: usize, expect: Expect) -> Result<(), String> {
    let first = step("first run", engine.run(&RunOptions::default()).await)?;
    ensure(first.failures().next().is_none(), || {
        format!("first run failed operations: {}", first.to_json())
    })?;
    let expected = if t.capabilities().groups { users + 1 } else { users };
    ensure(first.plan.counts.create == expected, || {
        format!("first run: {}", first.plan)
    })?;
    let full = RunOptions {
        full: true,
        ..RunOptions::default()
    };
    let second = step("second run", engine.run(&full).await)?;
    if !expect.enable_needs_password {
        return ensure(second.plan.is_empty(), || {
            format!("the second run is not empty:\n{}", second.plan)
        });
    }
    // Exactly the users' enables, each left undone with a note.
    let enable = idsync_core::plan::Action::Enable;
    ensure(
        second.plan.operations.len() == users && second.plan.operations.iter().all(|op| op.action == enable),
        || format!("the second run is not the {users} enables:\n{}", second.plan),
    )?;
    ensure(
        second.outcomes.len() == users && second.outcomes.iter().all(|o| o.note.is_some()),
        || format!("an enable left undone says nothing: {}", second.to_json()),
    )
}
