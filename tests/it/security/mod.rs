//! What Riposte refuses at its doors, what it encodes on the way out, and how much work one
//! request may cause. Each test fails without the protection it names.

mod doors;
mod injection;
mod limits;
mod outputs;
