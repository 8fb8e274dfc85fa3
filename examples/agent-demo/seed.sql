CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
INSERT OR IGNORE INTO notes (id, body) VALUES
  (1, 'An agent deployed this Worker with a temporary account.'),
  (2, 'A person opened the claim link and made it theirs.'),
  (3, 'Left unclaimed, everything here is deleted when the window closes.');
