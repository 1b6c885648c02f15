package swifttest

// keystoneConf keeps everything under the Keystone's directory: the
// sqlite database and the key repositories. Logs go to stderr, which is
// log/keystone*.log. password_hash_rounds is bcrypt's minimum: the
// default costs a quarter of a second per login on a busy machine, and
// the tests log in often.
const keystoneConf = `[DEFAULT]
use_stderr = true

[database]
connection = sqlite:///{{.Dir}}/keystone.db

[identity]
password_hash_rounds = 4

[token]
provider = fernet

[fernet_tokens]
key_repository = {{.Dir}}/fernet-keys

[fernet_receipts]
key_repository = {{.Dir}}/fernet-keys

[credential]
key_repository = {{.Dir}}/credential-keys
`

// keystoneSetup runs what keystone-manage db_sync, fernet_setup,
// credential_setup and bootstrap would, in one process: each
// keystone-manage run spends seconds importing Keystone. bootstrap
// makes the Default domain, the admin user and project, the admin,
// member and reader roles and RegionOne; it gets no URL, because the
// identity endpoint is registered once the server has its port.
//
// The database is then switched to write-ahead logging, in which readers
// do not block writers: a Keystone worker keeps a connection with an
// open read transaction after a request (until its garbage collector
// runs), and in sqlite's default mode that makes every write of the other
// workers fail with "database is locked".
//
// Arguments: the configuration file, the database, the owner and group
// of the keys; the admin's password is in OS_BOOTSTRAP_PASSWORD.
const keystoneSetup = `import sqlite3
import sys
from keystone.cmd import cli

conf, db, owner, group = sys.argv[1:5]
for cmd in (['db_sync'],
            ['fernet_setup', '--keystone-user', owner, '--keystone-group', group],
            ['credential_setup', '--keystone-user', owner, '--keystone-group', group],
            ['bootstrap', '--bootstrap-region-id', 'RegionOne']):
    cli.CONF.reset()  # the configuration is parsed again for each command
    cli.main(['keystone-manage', '--config-file', conf] + cmd)
sqlite3.connect(db).execute('PRAGMA journal_mode=WAL').close()
`
