//! Load-time checks of what a template passes to Riposte's own filters and functions when it
//! is written out: `date('%Q')`, `money('EURO')`, `'next week' | date` and
//! `hours_today('bakry')` are `check` errors, not failed sends. Arguments that are variables
//! are left to run time, where the filters fail with the same messages.
//!
//! The template is read as MiniJinja's tokens, which is enough for the forms these helpers are
//! written in (a literal right before `| date`, literals as arguments) and keeps to one place
//! the use of MiniJinja's lexer, which is not part of its stable interface.

use minijinja::Value;
use minijinja::machinery::{Token, tokenize};
use minijinja::syntax::SyntaxConfig;

use super::{TemplateProblem, calendars, dates, locales, money};

/// Names whose calls are checked: a template that names none is not tokenized again.
const NAMES: [&str; 4] = ["date", "money", "next_open", "hours_today"];

/// A calendar a template names, with the line of the template it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CalendarUse {
    pub(super) name: String,
    pub(super) line: u32,
}

/// What the literal arguments of a template's helper calls get wrong, and the calendars it
/// names (checked against each compile's calendars, which change without the template).
#[derive(Debug, Default)]
pub(super) struct Findings {
    pub(super) problems: Vec<TemplateProblem>,
    pub(super) calendars: Vec<CalendarUse>,
}

/// A call as written: the literal before a filter, and each argument if it is a literal.
struct Call<'a> {
    name: &'a str,
    line: u32,
    input: Option<Value>,
    args: Vec<Option<Value>>,
}

/// Checks the helper calls of a template that compiled.
pub(super) fn check(source: &str) -> Findings {
    let mut findings = Findings::default();
    if !NAMES.iter().any(|name| source.contains(name)) {
        return findings;
    }
    // A template that does not tokenize did not compile either, and says so itself.
    let Ok(tokens) = tokenize(source, false, SyntaxConfig::default())
        .map(|t| t.map(|(token, span)| (token, u32::from(span.start_line))))
        .collect::<Result<Vec<_>, _>>()
    else {
        return findings;
    };
    for call in (0..tokens.len()).filter_map(|at| call_at(&tokens, at)) {
        let problem = |message: String| TemplateProblem {
            line_offset: call.line,
            message,
        };
        if calendars::FUNCTIONS.contains(&call.name)
            && let Some(Some(name)) = call.args.first()
            && let Some(name) = name.as_str()
        {
            findings.calendars.push(CalendarUse {
                name: name.to_owned(),
                line: call.line,
            });
        }
        findings
            .problems
            .extend(check_call(&call).err().map(problem));
    }
    findings
}

/// The helper call whose name is the token at `at`, if it is one.
fn call_at<'a>(tokens: &'a [(Token<'a>, u32)], at: usize) -> Option<Call<'a>> {
    let (Token::Ident(name), line) = &tokens[at] else {
        return None;
    };
    let before = at.checked_sub(1).map(|i| &tokens[i].0);
    let filter = matches!(before, Some(Token::Pipe));
    let is_filter_name = matches!(*name, "date" | "money");
    let is_function_name = calendars::FUNCTIONS.contains(name);
    let is_call = matches!(tokens.get(at + 1), Some((Token::ParenOpen, _)));
    if !(filter && is_filter_name || !filter && is_function_name && is_call)
        || matches!(before, Some(Token::Dot))
    {
        return None;
    }
    let input = filter
        .then(|| at.checked_sub(2).and_then(|i| literal(&tokens[i].0)))
        .flatten();
    let args = if is_call {
        arguments(&tokens[at + 2..])
    } else {
        Vec::new()
    };
    Some(Call {
        name,
        line: *line,
        input,
        args,
    })
}

/// The arguments up to the closing parenthesis: each a literal, or `None` when it is not one
/// (or is passed by keyword).
fn arguments(tokens: &[(Token<'_>, u32)]) -> Vec<Option<Value>> {
    let mut args = Vec::new();
    let mut current: Vec<&Token<'_>> = Vec::new();
    let mut depth = 0usize;
    for (token, _) in tokens {
        match token {
            Token::ParenOpen | Token::BracketOpen | Token::BraceOpen => depth += 1,
            Token::ParenClose if depth == 0 => break,
            Token::ParenClose | Token::BracketClose | Token::BraceClose => {
                depth = depth.saturating_sub(1);
            }
            Token::Comma if depth == 0 => {
                args.push(single_literal(&current));
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(token);
    }
    if !current.is_empty() {
        args.push(single_literal(&current));
    }
    args
}

fn single_literal(tokens: &[&Token<'_>]) -> Option<Value> {
    match tokens {
        [token] => literal(token),
        _ => None,
    }
}

fn literal(token: &Token<'_>) -> Option<Value> {
    match token {
        Token::Str(s) => Some(Value::from(*s)),
        Token::String(s) => Some(Value::from(&**s)),
        Token::Int(n) => Some(Value::from(*n)),
        Token::Float(n) => Some(Value::from(*n)),
        _ => None,
    }
}

/// What is wrong with a call's literals, as the helper would say it at run time.
fn check_call(call: &Call<'_>) -> Result<(), String> {
    let arg = |i: usize| call.args.get(i).cloned().flatten();
    let text = |i: usize, what: &str| match arg(i) {
        Some(v) if v.as_str().is_none() => {
            Err(format!("{}: the {what} `{v}` must be text", call.name))
        }
        v => Ok(v.map(|v| v.to_string())),
    };
    let most = |n: usize, usage: &str| {
        if call.args.len() > n {
            Err(format!(
                "{}: too many arguments, it takes {usage}",
                call.name
            ))
        } else {
            Ok(())
        }
    };
    match call.name {
        "date" => {
            most(2, "a format and a locale: `date('%d.%m.%Y', 'de')`")?;
            if let Some(input) = &call.input {
                dates::check_input(input)?;
            }
            if let Some(format) = text(0, "format")? {
                dates::check_format("date", &format)?;
            }
            if let Some(locale) = text(1, "locale")? {
                locales::named("date", &locale)?;
            }
        }
        "money" => {
            most(2, "a currency and a locale: `money('EUR', 'de')`")?;
            if call.args.is_empty() {
                return Err("money: name the currency: `money('EUR')`".to_owned());
            }
            if let Some(input) = &call.input {
                money::check_input(input)?;
            }
            if let Some(currency) = text(0, "currency")? {
                money::Currency::named(&currency)?;
            }
            if let Some(locale) = text(1, "locale")? {
                locales::named("money", &locale)?;
            }
        }
        "next_open" => {
            most(
                2,
                "a calendar and a format: `next_open('shop', '%A %H:%M')`",
            )?;
            text(0, "calendar name")?;
            if let Some(format) = text(1, "format")? {
                dates::check_format("next_open", &format)?;
            }
        }
        _ => {
            if call.args.len() != 1 {
                return Err(format!(
                    "{}: it takes the name of a calendar: `{}('shop')`",
                    call.name, call.name
                ));
            }
            text(0, "calendar name")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(source: &str) -> Vec<String> {
        check(source)
            .problems
            .into_iter()
            .map(|p| format!("{}: {}", p.line_offset, p.message))
            .collect()
    }

    #[test]
    fn literal_arguments_are_checked() {
        assert!(
            problems("{{ data.t | date('%A %d.%m.', 'de') }} {{ 3 | money('EUR', 'fr') }}")
                .is_empty()
        );
        assert_eq!(
            problems("Hi\n{{ data.t | date('%A %Q') }}"),
            [
                "2: date: `%Q` in `%A %Q` is not a strftime code (e.g. %A weekday, %d day, %B month, %m, %Y, %H:%M)"
            ]
        );
        assert_eq!(
            problems("{{ data.t | date('%A', \"ger\") }}"),
            ["1: date: unknown locale `ger` (locales: en, de, es, pt, fr, it, ro)"]
        );
        assert_eq!(
            problems("{{ data.p | money('EURO', 'de') }}"),
            [
                "1: money: unknown currency `EURO`, did you mean `EUR`? (currencies: EUR, USD, GBP, RON, BRL, CHF, JPY)"
            ]
        );
        assert_eq!(
            problems("{{ data.p | money }}"),
            ["1: money: name the currency: `money('EUR')`"]
        );
        assert_eq!(
            problems("{{ data.t | date('%d', 'de', 'x') }}"),
            [
                "1: date: too many arguments, it takes a format and a locale: `date('%d.%m.%Y', 'de')`"
            ]
        );
        assert_eq!(
            problems("{{ data.t | date(5) }}"),
            ["1: date: the format `5` must be text"]
        );
    }

    #[test]
    fn literal_inputs_must_read() {
        assert!(
            problems(
                "{{ '2026-03-03' | date('%A') }} {{ 1772544600 | date }} {{ '4.5' | money('EUR') }}"
            )
            .is_empty()
        );
        let found = problems("{% if x %}{{ '03.03.2026' | date('%A') }}{% endif %}");
        assert_eq!(found.len(), 1);
        assert!(
            found[0].starts_with("1: date: `03.03.2026` is not a date (RFC 3339"),
            "{found:?}"
        );
        assert_eq!(
            problems("{{ 'ten' | money('EUR') }}"),
            ["1: money: `ten` is not an amount (a number, or text like `42.50`)"]
        );
    }

    #[test]
    fn variables_and_expressions_are_left_to_run_time() {
        assert!(problems("{{ data.t | date(data.f, contact.attrs.lang) }}").is_empty());
        assert!(problems("{{ data.t | date(format=data.f) }}").is_empty());
        assert!(
            problems(
                "{{ ('20' ~ 'x') | date }} {{ x.date }} {{ date }} {{ data.y | money(data.c) }}"
            )
            .is_empty()
        );
        assert!(problems("{{ data.t | date('%' ~ data.code) }}").is_empty());
        assert!(problems("date('%Q') outside a block | money").is_empty());
    }

    #[test]
    fn calendar_names_are_collected() {
        let found = check(
            "{{ hours_today('shop') }}\n{{ next_open('office', '%H') }} {{ hours_today(data.c) }}",
        );
        assert!(found.problems.is_empty(), "{:?}", found.problems);
        assert_eq!(
            found.calendars,
            [
                CalendarUse {
                    name: "shop".into(),
                    line: 1
                },
                CalendarUse {
                    name: "office".into(),
                    line: 2
                }
            ]
        );
        assert_eq!(
            problems("{{ hours_today() }}"),
            ["1: hours_today: it takes the name of a calendar: `hours_today('shop')`"]
        );
        assert_eq!(
            problems("{{ next_open('shop', '%Q') }}"),
            [
                "1: next_open: `%Q` in `%Q` is not a strftime code (e.g. %A weekday, %d day, %B month, %m, %Y, %H:%M)"
            ]
        );
    }
}
