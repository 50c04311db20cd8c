//! The dead-letter stream: ingress entries that could not be handled, kept
//! (up to DEAD_LETTER_MAXLEN) with the reason, for an operator to look at.

use common::{keys::Keys, limits::DEAD_LETTER_MAXLEN, model::INGRESS_FIELD};

/// Adds the dead-lettering of entry `id` (its raw `field`) to `pipe`.
pub fn add(pipe: &mut redis::Pipeline, keys: &Keys, id: &str, field: &str, reason: &str) {
    pipe.cmd("XADD")
        .arg(keys.dead_letter())
        .arg("MAXLEN")
        .arg("~")
        .arg(DEAD_LETTER_MAXLEN)
        .arg("*")
        .arg("id")
        .arg(id)
        .arg(INGRESS_FIELD)
        .arg(field)
        .arg("reason")
        .arg(reason)
        .ignore();
}
