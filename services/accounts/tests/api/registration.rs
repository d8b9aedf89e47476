//! R-AC-1 (business numbers) and R-AC-2 (registration, lockout, registry import).

use ccp_platform::testing::TestBackend;
use ccp_proto::accounts::v1 as pb;
use tonic::Code;

use crate::helpers::*;

#[tokio::test]
async fn r_ac_1_invalid_bns_are_rejected_with_the_field_named_and_nothing_written() {
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await;
        app.import_registry().await;
        let alice = app.person("Alice Martin").await;
        let mut c = app.accounts();
        for bad in [
            "123456789RM0001", // check digit
            "12345678RM0001",  // length
            "1234567820RM0001",
            "12345678aRM0001", // letters
            "123456782RM0000", // reference 0000
            "123456782RT0001", // RT program
            "",
        ] {
            let mut r = abc_registration();
            r.program_account = bad.to_owned();
            let err = c
                .register_business(app.req(r, &alice.token))
                .await
                .unwrap_err();
            assert_eq!(
                err.code(),
                Code::InvalidArgument,
                "{bad} on {}",
                backend.name()
            );
            assert!(
                fields(&err).contains(&"program_account".to_owned()),
                "{bad}: {:?}",
                fields(&err)
            );
            let err = c
                .get_registration_challenge(app.req(
                    pb::GetRegistrationChallengeRequest {
                        program_account: bad.to_owned(),
                    },
                    &alice.token,
                ))
                .await
                .unwrap_err();
            assert_eq!(err.code(), Code::InvalidArgument);
            assert_eq!(fields(&err), vec!["program_account".to_owned()]);
        }
        for bad in [
            "businesses/123456789",
            "businesses/12345678",
            "businesses/12345678a",
            // The bare BN9 names the business too (R-IN-1); these do not.
            "123456789",
            "/123456782",
        ] {
            let err = c
                .request_employee_access(app.req(
                    pb::RequestEmployeeAccessRequest {
                        request_id: rid(),
                        parent: bad.to_owned(),
                        note: "hi".to_owned(),
                    },
                    &alice.token,
                ))
                .await
                .unwrap_err();
            assert_eq!(err.code(), Code::InvalidArgument, "{bad}");
            assert_eq!(fields(&err), vec!["parent".to_owned()]);
        }
        let err = app
            .facts()
            .get_business_facts(app.internal(pb::GetBusinessFactsRequest {
                business: "123456789".to_owned(),
            }))
            .await
            .unwrap_err();
        assert_eq!(fields(&err), vec!["business".to_owned()]);
        // A registry import names the bad field of each rejected record.
        let mut records = registry();
        records[0].bn9 = "123456789".to_owned();
        records[1].program_accounts[0].reference = "RT0001".to_owned();
        let resp = app
            .facts()
            .import_registry(app.internal(pb::ImportRegistryRequest {
                request_id: rid(),
                records,
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(resp.accepted, 0);
        assert_eq!(resp.rejected.len(), 2);
        assert!(
            resp.rejected[0].reason.starts_with("bn9:"),
            "{}",
            resp.rejected[0].reason
        );
        assert!(
            resp.rejected[1]
                .reason
                .starts_with("program_accounts[0].reference:"),
            "{}",
            resp.rejected[1].reason
        );
        // Nothing was written for the business: not registered, no audit, no revision.
        let facts = app
            .facts()
            .get_business_facts(app.internal(pb::GetBusinessFactsRequest {
                business: ABC.to_owned(),
            }))
            .await
            .unwrap()
            .into_inner();
        assert!(!facts.registered);
        assert_eq!(facts.revision, 0);
        assert!(app.audit_actions(&alice, ABC).await.is_empty());
        assert!(
            app.role_facts(&alice.principal)
                .await
                .memberships
                .is_empty()
        );
    }
}

#[tokio::test]
async fn r_ac_2_registration_matches_the_normalized_registry_and_makes_the_caller_first_bam() {
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await;
        app.import_registry().await;
        let alice = app.person("Alice Martin").await;
        let mut c = app.accounts();
        let terms = c
            .get_terms_and_conditions(app.req(pb::GetTermsAndConditionsRequest {}, &alice.token))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(terms.version, "2026-01");
        assert!(!terms.text_en.is_empty() && !terms.text_fr.is_empty());
        let ch = c
            .get_registration_challenge(app.req(
                pb::GetRegistrationChallengeRequest {
                    program_account: format!("{ABC}RM0001"),
                },
                &alice.token,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(ch.business, ABC);
        assert_eq!(
            ch.questions
                .iter()
                .map(|q| q.id.as_str())
                .collect::<Vec<_>>(),
            ["daily_notice_total", "statement_date"]
        );
        let req = abc_registration();
        let resp = c
            .register_business(app.req(req.clone(), &alice.token))
            .await
            .unwrap()
            .into_inner();
        // Replaying the same request id returns the first result.
        let again = c
            .register_business(app.req(req, &alice.token))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(resp, again);
        let b = resp.business.unwrap();
        assert_eq!(b.legal_name, "ABC Windows & Doors Inc.");
        assert_eq!(
            b.program_accounts
                .iter()
                .map(|p| (p.bn15.as_str(), p.display_name.as_str()))
                .collect::<Vec<_>>(),
            [
                ("123456782RM0001", "ABC Windows"),
                ("123456782RM0002", "ABC Doors")
            ]
        );
        assert_eq!(b.business_manager_count, 1);
        assert!(b.single_business_manager);
        assert_eq!(b.accepted_terms_version, "2026-01");
        assert_eq!(
            b.terms_accept_time,
            Some(ccp_platform::store::timestamp(t0()))
        );
        let facts = app.role_facts(&alice.principal).await;
        assert_eq!(facts.memberships.len(), 1);
        assert!(facts.memberships[0].business_manager);
        let bf = app
            .facts()
            .get_business_facts(app.internal(pb::GetBusinessFactsRequest {
                business: ABC.to_owned(),
            }))
            .await
            .unwrap()
            .into_inner();
        assert!(bf.registered);
        assert_eq!(bf.business_managers, vec![alice.principal.clone()]);
        assert_eq!(bf.program_accounts.len(), 2);
        assert!(
            app.audit_actions(&alice, ABC)
                .await
                .contains(&"accounts.business.register".to_owned())
        );
        // A second registration is refused, pointing at an access request.
        let bob = app.person("Bob Tremblay").await;
        let err = c
            .register_business(app.req(abc_registration(), &bob.token))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::AlreadyExists);
        assert!(err.message().contains("request access"));
        let err = c
            .get_registration_challenge(app.req(
                pb::GetRegistrationChallengeRequest {
                    program_account: format!("{ABC}RM0002"),
                },
                &bob.token,
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::AlreadyExists);
        // A stale T&C version is refused.
        let mut itn = abc_registration();
        itn.program_account = format!("{ITN}RM0001");
        itn.accepted_terms_version = "2020-01".to_owned();
        let err = c
            .register_business(app.req(itn, &bob.token))
            .await
            .unwrap_err();
        assert_eq!(fields(&err), vec!["accepted_terms_version".to_owned()]);
    }
}

#[tokio::test]
async fn r_ac_2_failures_name_the_part_that_failed_without_revealing_the_registry() {
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await;
        app.import_registry().await;
        let alice = app.person("Alice Martin").await;
        let mut c = app.accounts();
        let mut r = abc_registration();
        r.legal_name = "ABC Windows & Doors Inc".to_owned(); // punctuation is significant
        r.answers[1].answer = "2026-02-16".to_owned();
        let err = c
            .register_business(app.req(r, &alice.token))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(
            fields(&err),
            vec!["legal_name".to_owned(), "answers[1]".to_owned()]
        );
        assert!(!err.message().contains("Inc."));
        assert!(!err.message().contains("2026-02-15"));
        let mut r = abc_registration();
        r.address.as_mut().unwrap().postal_code = "M5H 2N3".to_owned();
        r.answers[0].answer = "1234.57".to_owned();
        let err = c
            .register_business(app.req(r, &alice.token))
            .await
            .unwrap_err();
        assert_eq!(
            fields(&err),
            vec!["address".to_owned(), "answers[0]".to_owned()]
        );
        assert!(!err.message().contains("M5H"));
        // An unanswered question is a failure too.
        let mut r = abc_registration();
        r.answers.pop();
        let err = c
            .register_business(app.req(r, &alice.token))
            .await
            .unwrap_err();
        assert_eq!(fields(&err), vec!["answers".to_owned()]);
        assert!(
            app.role_facts(&alice.principal)
                .await
                .memberships
                .is_empty()
        );
    }
}

#[tokio::test]
async fn r_ac_2_five_failures_lock_registration_for_24_hours_and_the_lock_survives_a_restart() {
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await;
        app.import_registry().await;
        let alice = app.person("Alice Martin").await;
        let mut c = app.accounts();
        for i in 0..5 {
            let mut r = abc_registration();
            r.answers[0].answer = format!("{i}.00");
            let err = c
                .register_business(app.req(r, &alice.token))
                .await
                .unwrap_err();
            assert_eq!(err.code(), Code::InvalidArgument);
        }
        let err = c
            .register_business(app.req(abc_registration(), &alice.token))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted, "{}", backend.name());
        assert_eq!(reason(&err).as_deref(), Some("REGISTRATION_LOCKED"));
        assert_eq!(
            retry_delay(&err),
            Some(std::time::Duration::from_secs(24 * 3600))
        );
        // Restart: stop the app, build a new one on the same database.
        let (ctx, clock, identity, settings) = app.stop().await;
        let app = start(ctx, clock, identity, settings).await;
        let mut c = app.accounts();
        let err = c
            .register_business(app.req(abc_registration(), &alice.token))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted);
        // Another BN is not locked.
        let mut itn = abc_registration();
        itn.program_account = format!("{ITN}RM0001");
        itn.answers[0].answer = "0".to_owned();
        assert_eq!(
            c.register_business(app.req(itn, &alice.token))
                .await
                .unwrap_err()
                .code(),
            Code::InvalidArgument
        );
        // 24 hours later the lock is gone.
        app.clock.advance(chrono::Duration::seconds(24 * 3600 - 1));
        let alice = app.renew(&alice).await;
        let err = c
            .register_business(app.req(abc_registration(), &alice.token))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted);
        assert_eq!(retry_delay(&err), Some(std::time::Duration::from_secs(1)));
        app.clock.advance(chrono::Duration::seconds(1));
        c.register_business(app.req(abc_registration(), &alice.token))
            .await
            .unwrap();
        let actions = app.audit_actions(&alice, ABC).await;
        assert_eq!(
            actions
                .iter()
                .filter(|a| *a == "accounts.registration.fail")
                .count(),
            5
        );
        assert!(actions.contains(&"accounts.registration.lock".to_owned()));
    }
}

/// A failed registration of `bn15` by `who` (a wrong first answer).
async fn fail_once(app: &TestApp, who: &Person, bn15: &str) -> tonic::Status {
    let mut r = abc_registration();
    r.program_account = bn15.to_owned();
    r.answers[0].answer = "0.01".to_owned();
    app.accounts()
        .register_business(app.req(r, &who.token))
        .await
        .unwrap_err()
}

#[tokio::test]
async fn r_ac_2_a_strangers_failures_do_not_lock_the_owner_out() {
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await;
        app.import_registry().await;
        let mallory = app.person("Mallory Stranger").await;
        let alice = app.person("Alice Martin").await;
        let abc = format!("{ABC}RM0001");
        for _ in 0..5 {
            let err = fail_once(&app, &mallory, &abc).await;
            assert_eq!(err.code(), Code::InvalidArgument, "{}", backend.name());
        }
        // The stranger is locked out of ABC…
        let err = app
            .accounts()
            .register_business(app.req(abc_registration(), &mallory.token))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted);
        assert_eq!(reason(&err).as_deref(), Some("REGISTRATION_LOCKED"));
        assert!(err.message().contains("this business number"), "{err:?}");
        // …and ABC's owner is not: her own failures are her own, and she registers.
        let err = fail_once(&app, &alice, &abc).await;
        assert_eq!(err.code(), Code::InvalidArgument);
        let business = app.register_abc(&alice).await;
        assert_eq!(business.bn9, ABC);
        let facts = app.role_facts(&alice.principal).await;
        assert_eq!(facts.memberships.len(), 1, "{}", backend.name());
    }
}

/// Returns a valid BN9 (its Luhn check digit found by trying each).
fn bn9_from(prefix: u32) -> String {
    (0..10)
        .map(|d| format!("{prefix:08}{d}"))
        .find(|bn| ccp_accounts::domain::Bn9::parse(bn, "bn9").is_ok())
        .unwrap()
}

#[tokio::test]
async fn r_ac_2_twenty_failures_across_business_numbers_lock_all_of_a_persons_registrations() {
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await;
        app.import_registry().await;
        // Five more businesses in the registry, each with ABC's facts.
        let extra: Vec<String> = (0..5).map(|i| bn9_from(40_000_000 + i)).collect();
        let records = extra
            .iter()
            .map(|bn9| {
                let mut r = registry().remove(0);
                r.bn9 = bn9.clone();
                r
            })
            .collect();
        let imported = app
            .facts()
            .import_registry(app.internal(pb::ImportRegistryRequest {
                request_id: rid(),
                records,
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(imported.accepted, 5);
        let mallory = app.person("Mallory Enumerator").await;
        // Four failures on each of five BNs: never five on one, twenty in all.
        for (i, bn9) in extra.iter().enumerate() {
            for j in 0..4 {
                let err = fail_once(&app, &mallory, &format!("{bn9}RM0001")).await;
                assert_eq!(
                    err.code(),
                    Code::InvalidArgument,
                    "{} attempt {i}/{j}",
                    backend.name()
                );
            }
        }
        // Now every BN is locked for her, ABC included, where she never failed.
        let err = app
            .accounts()
            .register_business(app.req(abc_registration(), &mallory.token))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted, "{}", backend.name());
        assert_eq!(reason(&err).as_deref(), Some("REGISTRATION_LOCKED"));
        assert_eq!(
            retry_delay(&err),
            Some(std::time::Duration::from_secs(24 * 3600))
        );
        assert!(err.message().contains("any business number"), "{err:?}");
        // Nobody else is: Alice registers ABC.
        let alice = app.person("Alice Martin").await;
        app.register_abc(&alice).await;
        // 24 hours later Mallory may try again (and fails on the answers).
        app.clock.advance(chrono::Duration::hours(24));
        let mallory = app.renew(&mallory).await;
        let err = fail_once(&app, &mallory, &format!("{}RM0001", extra[0])).await;
        assert_eq!(err.code(), Code::InvalidArgument);
    }
}

/// Spoils one field of a registration.
type Spoil = fn(&mut pb::RegisterBusinessRequest);

#[tokio::test]
async fn r_in_1_registration_text_with_control_characters_is_refused_alike_on_both_backends_and_writes_nothing()
 {
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await;
        app.import_registry().await;
        let alice = app.person("Alice Martin").await;
        let mut c = app.accounts();
        // Six attempts: more than the lock allows, were they counted as failures.
        let bad: [(&str, Spoil); 6] = [
            ("legal_name", |r| r.legal_name.push('\0')),
            ("address.line1", |r| {
                r.address.as_mut().unwrap().line1.insert(3, '\0')
            }),
            ("address.line2", |r| {
                r.address.as_mut().unwrap().line2.push('\u{7}')
            }),
            ("address.city", |r| {
                r.address.as_mut().unwrap().city.push('\n')
            }),
            ("address.postal_code", |r| {
                r.address.as_mut().unwrap().postal_code.push('\u{1b}')
            }),
            ("answers[1].answer", |r| r.answers[1].answer.push('\0')),
        ];
        for (field, spoil) in bad {
            let mut r = abc_registration();
            spoil(&mut r);
            let err = c
                .register_business(app.req(r, &alice.token))
                .await
                .unwrap_err();
            assert_eq!(
                err.code(),
                Code::InvalidArgument,
                "{field} {}",
                backend.name()
            );
            assert_eq!(fields(&err), vec![field.to_owned()], "{}", backend.name());
            assert!(err.message().contains("control character"), "{err:?}");
        }
        // An import holding a NUL is refused for that record, naming the field.
        let mut record = registry().remove(1);
        record.legal_name.push('\0');
        let imported = app
            .facts()
            .import_registry(app.internal(pb::ImportRegistryRequest {
                request_id: rid(),
                records: vec![record],
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(imported.accepted, 0);
        assert_eq!(imported.rejected.len(), 1);
        assert!(
            format!("{:?}", imported.rejected[0]).contains("legal_name"),
            "{:?}",
            imported.rejected
        );
        // Nothing was written: no failure was counted, and Alice registers.
        app.register_abc(&alice).await;
        let actions = app.audit_actions(&alice, ABC).await;
        assert!(
            !actions.iter().any(|a| a == "accounts.registration.fail"),
            "{actions:?}"
        );
    }
}

#[tokio::test]
async fn r_ac_2_a_registry_import_adding_rm_accounts_links_them_to_a_registered_business() {
    for backend in TestBackend::all().await {
        let app = spawn_app(&backend).await;
        let first = app.import_registry().await;
        assert_eq!(first.accepted, 2);
        assert!(first.rejected.is_empty());
        let alice = app.person("Alice Martin").await;
        app.register_abc(&alice).await;
        let mut records = registry();
        records[0]
            .program_accounts
            .push(pb::RegistryProgramAccount {
                reference: "RM0003".to_owned(),
                display_name: "ABC Skylights".to_owned(),
            });
        let request = pb::ImportRegistryRequest {
            request_id: rid(),
            records,
        };
        let resp = app
            .facts()
            .import_registry(app.internal(request.clone()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(resp.accepted, 2);
        assert_eq!(resp.linked_program_accounts, vec![format!("{ABC}RM0003")]);
        // Idempotent: the same request id answers the same; a new one links nothing new.
        let replay = app
            .facts()
            .import_registry(app.internal(request.clone()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(replay, resp);
        let again = app
            .facts()
            .import_registry(app.internal(pb::ImportRegistryRequest {
                request_id: rid(),
                ..request
            }))
            .await
            .unwrap()
            .into_inner();
        assert!(again.linked_program_accounts.is_empty());
        let b = app
            .accounts()
            .get_business(app.req(
                pb::GetBusinessRequest {
                    name: format!("businesses/{ABC}"),
                },
                &alice.token,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(b.program_accounts.len(), 3);
        assert!(
            app.audit_actions(&alice, ABC)
                .await
                .contains(&"accounts.program_accounts.link".to_owned())
        );
        // More than 10,000 records are refused as a whole.
        let err = app
            .facts()
            .import_registry(app.internal(pb::ImportRegistryRequest {
                request_id: rid(),
                records: vec![registry()[1].clone(); 10_001],
            }))
            .await
            .unwrap_err();
        assert_eq!(fields(&err), vec!["records".to_owned()]);
    }
}
