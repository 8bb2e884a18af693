//! Files a rule file names (knowledge for a model, a campaign's audience) are read only from
//! inside the rules folder: a rule file cannot send `/etc/passwd` or a secret beside the rules
//! to a model, or make recipients of it.

use std::path::{Path, PathBuf};

use super::Compiler;

impl Compiler<'_> {
    /// The real path of `name` (relative to the rule file), if it lies inside the rules
    /// folder once `..` and symbolic links are resolved; else why not, naming it as `what`.
    pub(super) fn file_inside(&self, name: &str, what: &str) -> Result<PathBuf, String> {
        let path = self.base_dir().join(name);
        let root = self
            .file
            .root
            .as_deref()
            .unwrap_or_else(|| crate::rules::folder_of(&self.file.path));
        let real = path
            .canonicalize()
            .map_err(|e| format!("cannot read {what} `{}`: {e}", path.display()))?;
        let real_root = root
            .canonicalize()
            .map_err(|e| format!("cannot read the rules folder `{}`: {e}", root.display()))?;
        if real.starts_with(&real_root) {
            return Ok(real);
        }
        Err(outside(name, &real, root, what))
    }
}

fn outside(name: &str, real: &Path, root: &Path, what: &str) -> String {
    // `..` and symbolic links make a name look other than where it leads: say where.
    let leads = if real == Path::new(name) {
        String::new()
    } else {
        format!(" (it leads to `{}`)", real.display())
    };
    format!(
        "{what} `{name}` is outside the rules folder `{}`{leads}: files a rule reads must be inside it",
        root.display()
    )
}
