//! Console sessions: a random id in an HttpOnly, SameSite=Strict cookie, and a CSRF token per
//! session that every form carries back. Kept in memory: signing in again after a restart is
//! the price of keeping no secret on disk.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::http::header::COOKIE;
use rand::Rng;

/// The cookie's name.
pub(super) const COOKIE_NAME: &str = "riposte_console";
/// The sign-in form's CSRF token, set with the form: the form must send it back.
pub(super) const LOGIN_COOKIE: &str = "riposte_console_login";
/// How long a session lasts without use.
const IDLE: Duration = Duration::from_secs(8 * 3600);
/// Most sessions kept at once; the oldest go first.
const MOST: usize = 256;

/// A signed-in browser.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) csrf: String,
    last_used: Instant,
}

/// Every open session, by id.
#[derive(Debug, Default)]
pub struct Sessions(Mutex<HashMap<String, Session>>);

impl Sessions {
    /// Opens a session: its id (for the cookie).
    pub(super) fn open(&self) -> String {
        let id = random_token();
        let mut all = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        all.retain(|_, s| now.duration_since(s.last_used) < IDLE);
        if all.len() >= MOST
            && let Some(oldest) = all
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(k, _)| k.clone())
        {
            all.remove(&oldest);
        }
        all.insert(
            id.clone(),
            Session {
                csrf: random_token(),
                last_used: now,
            },
        );
        id
    }

    /// The session the request's cookie names, if it is open (and marks it used).
    pub(super) fn find(&self, headers: &HeaderMap) -> Option<(String, Session)> {
        let id = cookie(headers, COOKIE_NAME)?;
        let mut all = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let session = all.get_mut(id)?;
        let now = Instant::now();
        if now.duration_since(session.last_used) >= IDLE {
            all.remove(id);
            return None;
        }
        session.last_used = now;
        Some((id.to_owned(), session.clone()))
    }

    /// Ends a session.
    pub(super) fn close(&self, id: &str) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(id);
    }
}

/// 32 random bytes, hex: unguessable, and safe in a cookie and a form field.
pub(super) fn random_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(super) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_found_by_its_cookie_and_closed() {
        let sessions = Sessions::default();
        let id = sessions.open();
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            format!("other=1; {COOKIE_NAME}={id}").parse().unwrap(),
        );
        let (found, session) = sessions.find(&headers).expect("open");
        assert_eq!(found, id);
        assert_eq!(session.csrf.len(), 64);
        sessions.close(&id);
        assert!(sessions.find(&headers).is_none());
    }

    #[test]
    fn an_unknown_cookie_is_no_session() {
        let sessions = Sessions::default();
        sessions.open();
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, format!("{COOKIE_NAME}=forged").parse().unwrap());
        assert!(sessions.find(&headers).is_none());
    }
}
