//! The languages the `date` and `money` filters write in: day and month names, and how
//! amounts are written. Names follow the CLDR data of each language (its stand-alone forms,
//! abbreviations without their trailing period); where a language writes them in lower case
//! (es, pt, fr, it, ro), so do they, and `| capitalize` starts a sentence with one.

/// How one language writes dates and amounts.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Locale {
    pub(crate) code: &'static str,
    /// Monday first, as chrono counts.
    pub(crate) days: [&'static str; 7],
    pub(crate) days_short: [&'static str; 7],
    /// January first.
    pub(crate) months: [&'static str; 12],
    pub(crate) months_short: [&'static str; 12],
    pub(crate) decimal: char,
    pub(crate) group: char,
    /// Digits an integer part needs before it is grouped at all: Spanish writes `1234,50 €`
    /// but `12.345,50 €`.
    pub(crate) group_from: usize,
    /// Whether the currency symbol comes before the amount (`$1.00`, `R$ 1,00`).
    pub(crate) symbol_first: bool,
    /// Whether a symbol before the amount is spaced from it even when it is a sign (`R$ 1,00`
    /// but `$1.00`); a symbol after the amount always is, and so is a symbol of letters.
    pub(crate) symbol_spaced: bool,
}

/// The space between an amount and its symbol, and the French group separator: a no-break
/// space, so WhatsApp never wraps `42,50` and `€` onto two lines.
pub(crate) const NBSP: char = '\u{a0}';

/// The language used when a filter names none.
pub(crate) const DEFAULT: &Locale = &LOCALES[0];

/// Every language, by its ISO 639-1 code.
pub(crate) const LOCALES: [Locale; 7] = [
    Locale {
        code: "en",
        days: [
            "Monday",
            "Tuesday",
            "Wednesday",
            "Thursday",
            "Friday",
            "Saturday",
            "Sunday",
        ],
        days_short: ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
        months: [
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ],
        months_short: [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ],
        decimal: '.',
        group: ',',
        group_from: 4,
        symbol_first: true,
        symbol_spaced: false,
    },
    Locale {
        code: "de",
        days: [
            "Montag",
            "Dienstag",
            "Mittwoch",
            "Donnerstag",
            "Freitag",
            "Samstag",
            "Sonntag",
        ],
        days_short: ["Mo", "Di", "Mi", "Do", "Fr", "Sa", "So"],
        months: [
            "Januar",
            "Februar",
            "März",
            "April",
            "Mai",
            "Juni",
            "Juli",
            "August",
            "September",
            "Oktober",
            "November",
            "Dezember",
        ],
        months_short: [
            "Jan", "Feb", "Mär", "Apr", "Mai", "Jun", "Jul", "Aug", "Sep", "Okt", "Nov", "Dez",
        ],
        decimal: ',',
        group: '.',
        group_from: 4,
        symbol_first: false,
        symbol_spaced: true,
    },
    Locale {
        code: "es",
        days: [
            "lunes",
            "martes",
            "miércoles",
            "jueves",
            "viernes",
            "sábado",
            "domingo",
        ],
        days_short: ["lun", "mar", "mié", "jue", "vie", "sáb", "dom"],
        months: [
            "enero",
            "febrero",
            "marzo",
            "abril",
            "mayo",
            "junio",
            "julio",
            "agosto",
            "septiembre",
            "octubre",
            "noviembre",
            "diciembre",
        ],
        months_short: [
            "ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sept", "oct", "nov", "dic",
        ],
        decimal: ',',
        group: '.',
        group_from: 5,
        symbol_first: false,
        symbol_spaced: true,
    },
    Locale {
        code: "pt",
        days: [
            "segunda-feira",
            "terça-feira",
            "quarta-feira",
            "quinta-feira",
            "sexta-feira",
            "sábado",
            "domingo",
        ],
        days_short: ["seg", "ter", "qua", "qui", "sex", "sáb", "dom"],
        months: [
            "janeiro",
            "fevereiro",
            "março",
            "abril",
            "maio",
            "junho",
            "julho",
            "agosto",
            "setembro",
            "outubro",
            "novembro",
            "dezembro",
        ],
        months_short: [
            "jan", "fev", "mar", "abr", "mai", "jun", "jul", "ago", "set", "out", "nov", "dez",
        ],
        decimal: ',',
        group: '.',
        group_from: 4,
        // Brazilian usage (`R$ 1.234,50`), CLDR's default for Portuguese.
        symbol_first: true,
        symbol_spaced: true,
    },
    Locale {
        code: "fr",
        days: [
            "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche",
        ],
        days_short: ["lun", "mar", "mer", "jeu", "ven", "sam", "dim"],
        months: [
            "janvier",
            "février",
            "mars",
            "avril",
            "mai",
            "juin",
            "juillet",
            "août",
            "septembre",
            "octobre",
            "novembre",
            "décembre",
        ],
        months_short: [
            "janv", "févr", "mars", "avr", "mai", "juin", "juil", "août", "sept", "oct", "nov",
            "déc",
        ],
        decimal: ',',
        group: NBSP,
        group_from: 4,
        symbol_first: false,
        symbol_spaced: true,
    },
    Locale {
        code: "it",
        days: [
            "lunedì",
            "martedì",
            "mercoledì",
            "giovedì",
            "venerdì",
            "sabato",
            "domenica",
        ],
        days_short: ["lun", "mar", "mer", "gio", "ven", "sab", "dom"],
        months: [
            "gennaio",
            "febbraio",
            "marzo",
            "aprile",
            "maggio",
            "giugno",
            "luglio",
            "agosto",
            "settembre",
            "ottobre",
            "novembre",
            "dicembre",
        ],
        months_short: [
            "gen", "feb", "mar", "apr", "mag", "giu", "lug", "ago", "set", "ott", "nov", "dic",
        ],
        decimal: ',',
        group: '.',
        group_from: 4,
        symbol_first: false,
        symbol_spaced: true,
    },
    Locale {
        code: "ro",
        // With the comma below (ț, U+021B), as Romanian is written, not the cedilla.
        days: [
            "luni",
            "marți",
            "miercuri",
            "joi",
            "vineri",
            "sâmbătă",
            "duminică",
        ],
        days_short: ["lun", "mar", "mie", "joi", "vin", "sâm", "dum"],
        months: [
            "ianuarie",
            "februarie",
            "martie",
            "aprilie",
            "mai",
            "iunie",
            "iulie",
            "august",
            "septembrie",
            "octombrie",
            "noiembrie",
            "decembrie",
        ],
        months_short: [
            "ian", "feb", "mar", "apr", "mai", "iun", "iul", "aug", "sept", "oct", "nov", "dec",
        ],
        decimal: ',',
        group: '.',
        group_from: 4,
        symbol_first: false,
        symbol_spaced: true,
    },
];

/// The language with this code.
pub(crate) fn find(code: &str) -> Option<&'static Locale> {
    LOCALES.iter().find(|l| l.code == code)
}

/// The language with this code, or why there is none (with the codes there are).
pub(crate) fn named(filter: &str, code: &str) -> Result<&'static Locale, String> {
    find(code).ok_or_else(|| {
        let codes: Vec<&str> = LOCALES.iter().map(|l| l.code).collect();
        // Two-letter codes are all near each other: suggest only the language a code names
        // in another case or with a region (`DE`, `pt-BR`), never a neighbour (`gr`, `fr`).
        let language = code
            .split(['-', '_'])
            .next()
            .unwrap_or(code)
            .to_ascii_lowercase();
        let hint =
            find(&language).map_or_else(String::new, |l| format!(", did you mean `{}`?", l.code));
        format!(
            "{filter}: unknown locale `{code}`{hint} (locales: {})",
            codes.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_locale_has_distinct_names() {
        for locale in &LOCALES {
            for names in [&locale.days[..], &locale.days_short[..]] {
                let mut unique: Vec<_> = names.to_vec();
                unique.sort_unstable();
                unique.dedup();
                assert_eq!(unique.len(), 7, "{}: {names:?}", locale.code);
            }
            for names in [&locale.months[..], &locale.months_short[..]] {
                let mut unique: Vec<_> = names.to_vec();
                unique.sort_unstable();
                unique.dedup();
                assert_eq!(unique.len(), 12, "{}: {names:?}", locale.code);
            }
            let days = locale.days.iter().zip(&locale.days_short);
            // An abbreviation starts as its name does (Romanian `nov` for `noiembrie`).
            for (long, short) in locale.months.iter().zip(&locale.months_short).chain(days) {
                let start: String = short.chars().take(2).collect();
                assert!(
                    long.starts_with(&start),
                    "{}: {long} / {short}",
                    locale.code
                );
            }
        }
    }

    #[test]
    fn romanian_is_written_with_the_comma_below() {
        let ro = find("ro").unwrap();
        assert_eq!(ro.days[1], "mar\u{21b}i");
        assert_eq!(ro.days[5], "s\u{e2}mb\u{103}t\u{103}");
        assert!(ro.days.iter().all(|d| !d.contains('\u{163}')), "no ţ");
    }

    #[test]
    fn unknown_locales_name_the_known_ones() {
        assert_eq!(
            named("date", "DE").unwrap_err(),
            "date: unknown locale `DE`, did you mean `de`? (locales: en, de, es, pt, fr, it, ro)"
        );
        assert!(
            named("money", "pt_BR")
                .unwrap_err()
                .contains("did you mean `pt`?")
        );
        assert_eq!(
            named("date", "gr").unwrap_err(),
            "date: unknown locale `gr` (locales: en, de, es, pt, fr, it, ro)"
        );
    }
}
