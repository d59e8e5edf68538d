-- A small warehouse for the example DAGs: 2,000 accounts on three plans, 120,000 users.
-- Rebuilt from scratch each time, so the example runs offline and the same everywhere.
DROP TABLE IF EXISTS users;
DROP TABLE IF EXISTS accounts;
CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT NOT NULL, plan TEXT NOT NULL);
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL,
    account_id INTEGER NOT NULL REFERENCES accounts (id),
    active INTEGER NOT NULL
);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
INSERT INTO accounts (id, name, plan)
SELECT i, 'Account ' || i, CASE i % 4 WHEN 0 THEN 'enterprise' WHEN 1 THEN 'team' ELSE 'free' END FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 120000)
INSERT INTO users (id, email, account_id, active)
SELECT i, printf('user%06d@acct%d.example.com', i, (i % 2000) + 1), (i % 2000) + 1, CASE WHEN i % 7 = 0 THEN 0 ELSE 1 END
FROM n;
