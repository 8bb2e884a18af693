//! What a template that failed at run time was missing, in the rule author's words: MiniJinja
//! says "undefined value" and names the template by its internal name; the author needs the
//! variable (`data.phone`) and what the event had instead.

use minijinja::{ErrorKind, Template, Value};

/// The variable that was undefined, and what its parent holds: `None` when the failure is
/// not an undefined value, or no variable of the template is missing from `ctx`.
pub(super) fn missing(
    template: &Template<'_, '_>,
    err: &minijinja::Error,
    ctx: &Value,
) -> Option<String> {
    if err.kind() != ErrorKind::UndefinedError {
        return None;
    }
    let source = template.source();
    let at = err.range().and_then(|r| source.get(r)).unwrap_or_default();
    let mut paths: Vec<String> = template.undeclared_variables(true).into_iter().collect();
    // The failing expression's own variables first, then in the order written.
    paths.sort_by_key(|p| (!at.contains(p.as_str()), source.find(p.as_str())));
    paths
        .iter()
        .filter(|p| at.contains(p.as_str()) || !guarded(source, p))
        .find_map(|path| undefined_in(ctx, path))
}

/// Whether every use of `path` in `source` is one that allows it to be missing.
fn guarded(source: &str, path: &str) -> bool {
    source.match_indices(path).all(|(i, _)| {
        let after = source[i + path.len()..].trim_start();
        let after = after.strip_prefix('|').map_or(after, str::trim_start);
        after.starts_with("default")
            || after.starts_with("d(")
            || after.starts_with("is defined")
            || after.starts_with("is undefined")
    })
}

/// Walks `path` in `ctx`: the explanation when some part of it is not there.
fn undefined_in(ctx: &Value, path: &str) -> Option<String> {
    let parts: Vec<&str> = path.split('.').collect();
    let mut value = ctx.clone();
    for (n, part) in parts.iter().enumerate() {
        let next = value.get_attr(part).unwrap_or(Value::UNDEFINED);
        let so_far = parts[..=n].join(".");
        if next.is_undefined() {
            let parent = parts[..n].join(".");
            let what = if n == 0 {
                String::new()
            } else {
                holds(&parent, &value)
            };
            return Some(format!("`{so_far}` is not defined for this event{what}"));
        }
        if next.is_none() && n + 1 < parts.len() {
            return Some(format!(
                "`{path}` is not defined for this event (`{so_far}` is empty)"
            ));
        }
        value = next;
    }
    None
}

/// "; `data` has: cart_id, total" for a map, or what the value is instead.
fn holds(name: &str, value: &Value) -> String {
    if value.is_none() {
        return format!(" (`{name}` is empty)");
    }
    let keys: Vec<String> = match value.kind() {
        minijinja::value::ValueKind::Map => value
            .try_iter()
            .map(|keys| keys.take(12).map(|k| k.to_string()).collect())
            .unwrap_or_default(),
        _ => return format!(" (`{name}` is {}, not a map)", value.kind()),
    };
    if keys.is_empty() {
        format!(" (`{name}` is empty)")
    } else {
        format!(" (`{name}` has: {})", keys.join(", "))
    }
}

/// A MiniJinja error without the internal template name: its description, and the line of
/// the template when it has several.
pub(super) fn describe(err: &minijinja::Error, lines: usize) -> String {
    let mut text = err
        .detail()
        .map_or_else(|| err.kind().to_string(), str::to_owned);
    if lines > 1
        && let Some(line) = err.line()
    {
        text.push_str(&format!(" (line {line} of the template)"));
    }
    text
}

#[cfg(test)]
mod tests {
    use minijinja::{Environment, UndefinedBehavior, context};

    use super::*;

    fn failure(source: &str, ctx: Value) -> Option<String> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.add_template("t0", source).unwrap();
        let template = env.get_template("t0").unwrap();
        let err = template.render(&ctx).expect_err("fails");
        missing(&template, &err, &ctx)
    }

    #[test]
    fn names_the_missing_field_and_what_its_parent_has() {
        let ctx = context! { data => context! { cart_id => "c-1", total => 42 } };
        assert_eq!(
            failure(
                "Hi {{ data.name | default('there') }}, cart {{ data.cart_id }}: {{ data.phone }}",
                ctx
            )
            .as_deref(),
            Some("`data.phone` is not defined for this event (`data` has: cart_id, total)")
        );
    }

    #[test]
    fn names_a_missing_root() {
        let ctx = context! { text => "hi" };
        assert_eq!(
            failure("{{ lookup.order.status }}", ctx).as_deref(),
            Some("`lookup` is not defined for this event")
        );
    }

    #[test]
    fn a_field_under_an_empty_value_is_explained() {
        let ctx = context! { data => context! { customer => () } };
        assert_eq!(
            failure("{{ data.customer.name }}", ctx).as_deref(),
            Some("`data.customer.name` is not defined for this event (`data.customer` is empty)")
        );
    }
}
