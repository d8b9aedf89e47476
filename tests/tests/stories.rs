//! The guide's eight stories and the notification stories with the real
//! `ccp` binary, each in its own world: embedded (the suite in this process
//! on a settable clock) and distributed (two replicas of every service as
//! processes on PostgreSQL and Redis, each caller balancing over them, one
//! notifier, all on a shared clock file; run when `CCP_TEST_DATABASE_URL`
//! and `CCP_TEST_REDIS_URL` are set, and required in CI).
//!
//! At most `CCP_STORIES_PARALLEL` worlds (default 2) run at once: each one
//! starts a suite and many `ccp` processes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::sync::{Condvar, Mutex};

use ccp_e2e::{Mode, World, stories};

/// A counting semaphore shared by every test thread of this binary.
static RUNNING: Mutex<usize> = Mutex::new(0);
static FREED: Condvar = Condvar::new();

struct Permit;

impl Permit {
    fn acquire() -> Self {
        let limit = std::env::var("CCP_STORIES_PARALLEL")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(2)
            .max(1);
        let mut running = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
        while *running >= limit {
            running = FREED.wait(running).unwrap_or_else(|e| e.into_inner());
        }
        *running += 1;
        Permit
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut running = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
        *running -= 1;
        FREED.notify_one();
    }
}

/// Runs one story in a fresh world of `mode` on its own runtime.
fn run<F>(mode: Mode, story: F)
where
    F: for<'w> AsyncStory<'w>,
{
    let _permit = Permit::acquire();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let world = match mode {
            Mode::Embedded => World::embedded().await.unwrap(),
            Mode::Distributed => match World::distributed().await.unwrap() {
                Some(world) => world,
                None => {
                    eprintln!("skipped: CCP_TEST_DATABASE_URL / CCP_TEST_REDIS_URL not set");
                    return;
                }
            },
        };
        story.call(&world).await;
        world.stop().await.unwrap();
    });
}

/// A story function: `async fn(&World)`.
trait AsyncStory<'w> {
    /// The story's future.
    type Fut: Future<Output = ()> + 'w;
    /// Starts the story on `world`.
    fn call(&self, world: &'w World) -> Self::Fut;
}

impl<'w, F, Fut> AsyncStory<'w> for F
where
    F: Fn(&'w World) -> Fut,
    Fut: Future<Output = ()> + 'w,
{
    type Fut = Fut;
    fn call(&self, world: &'w World) -> Fut {
        self(world)
    }
}

macro_rules! story {
    ($embedded:ident, $distributed:ident, $story:path) => {
        #[test]
        fn $embedded() {
            run(Mode::Embedded, $story);
        }

        #[test]
        fn $distributed() {
            run(Mode::Distributed, $story);
        }
    };
}

story!(
    embedded_story_1_first_sign_in_profile_registration_and_a_second_bam,
    distributed_story_1_first_sign_in_profile_registration_and_a_second_bam,
    stories::story_1_first_sign_in_profile_registration_and_a_second_bam
);
story!(
    embedded_story_2_employee_request_with_a_note_approved_per_program,
    distributed_story_2_employee_request_with_a_note_approved_per_program,
    stories::story_2_employee_request_with_a_note_approved_per_program
);
story!(
    embedded_story_3_the_pam_approves_for_its_program_only,
    distributed_story_3_the_pam_approves_for_its_program_only,
    stories::story_3_the_pam_approves_for_its_program_only
);
story!(
    embedded_story_4_the_broker_request_waits_for_registration_and_is_approved,
    distributed_story_4_the_broker_request_waits_for_registration_and_is_approved,
    stories::story_4_the_broker_request_waits_for_registration_and_is_approved
);
story!(
    embedded_story_5_broker_employee_through_a_client_group,
    distributed_story_5_broker_employee_through_a_client_group,
    stories::story_5_broker_employee_through_a_client_group
);
story!(
    embedded_story_6_expired_user_sees_only_its_own_submissions,
    distributed_story_6_expired_user_sees_only_its_own_submissions,
    stories::story_6_expired_user_sees_only_its_own_submissions
);
story!(
    embedded_story_7_the_client_ends_a_relationship_early,
    distributed_story_7_the_client_ends_a_relationship_early,
    stories::story_7_the_client_ends_a_relationship_early
);
story!(
    embedded_story_8_the_orphan_user,
    distributed_story_8_the_orphan_user,
    stories::story_8_the_orphan_user
);

story!(
    embedded_notice_relationship_request_reaches_the_clients_manager,
    distributed_notice_relationship_request_reaches_the_clients_manager,
    stories::notice_relationship_request_reaches_the_clients_manager
);
story!(
    embedded_notice_a_relationship_from_request_to_reminders_to_expiry,
    distributed_notice_a_relationship_from_request_to_reminders_to_expiry,
    stories::notice_a_relationship_from_request_to_reminders_to_expiry
);
