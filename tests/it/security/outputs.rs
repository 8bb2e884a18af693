//! What Riposte writes for others to read stays inert: spreadsheet cells, log lines, files it
//! may read for a model, redirects it will not follow.
