//! The membership-event outbox: each change to a room's membership writes
//! its event here, in the change's own transaction (`Store::record_event`), and the
//! relay (`event_relay.rs`) carries it to the room's timeline.

use chat_model::message::MemberAction;

use crate::{
    error::UserError,
    store::{Store, Tx},
};

impl Store {
    /// Records that `actor` did `action` to `subject` in `room` (for a role
    /// change, `subject`'s new `role`), unless MEMBERSHIP_EVENTS is off.
    pub(crate) async fn record_event(
        &self,
        tx: &mut Tx,
        room: &str,
        actor: &str,
        action: MemberAction,
        subject: &str,
        role: Option<&str>,
    ) -> Result<(), UserError> {
        if !self.member_events() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO room_event_outbox (room, actor, action, subject, role)
         VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(room)
        .bind(actor)
        .bind(action.as_str())
        .bind(subject)
        .bind(role)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}
