package swifttest

// The files a one-node Swift needs, written under the server's directory.
// They follow upstream's "Swift All In One" with one replica, one device (a
// plain directory) and every server on 127.0.0.1.

// launcher runs Swift's own WSGI server with two changes: swift.conf is
// read from our directory (Swift 2.30 hard-codes /etc/swift/swift.conf),
// and logs go to stderr instead of syslog, which these machines lack.
const launcher = `import logging
import sys

swift_dir, server = sys.argv[1], sys.argv[2]
del sys.argv[1:3]
from swift.common import utils
utils.set_swift_dir(swift_dir)
utils.ThreadSafeSysLogHandler = lambda *a, **kw: logging.NullHandler()
from swift.common import constraints, storage_policy
constraints.reload_constraints()
storage_policy.reload_storage_policies()
from swift.common.wsgi import run_wsgi

conf_file, options = utils.parse_options()
if server == 'object-server':
    from swift.obj import server as obj_server
    options['global_conf_callback'] = obj_server.global_conf_callback
sys.exit(run_wsgi(conf_file, server, **options))
`

// rings builds the account, container and object rings in one python
// process (0.5 s, against 4 s for nine swift-ring-builder calls).
// Arguments: the directory, then name:port for each ring.
const rings = `import sys
from swift.common.ring import RingBuilder
etc = sys.argv[1]
for arg in sys.argv[2:]:
    name, port = arg.split(':')
    b = RingBuilder(10, 1, 1)  # part power, replicas, min_part_hours
    b.add_dev({'region': 1, 'zone': 1, 'ip': '127.0.0.1', 'port': int(port),
               'replication_ip': '127.0.0.1', 'replication_port': int(port),
               'device': 'd1', 'weight': 1.0})
    b.rebalance()
    b.get_ring().save('%s/%s.ring.gz' % (etc, name))
`

const swiftConf = `[swift-hash]
swift_hash_path_prefix = hindsight
swift_hash_path_suffix = hindsight

[storage-policy:0]
name = Policy-0
default = yes

[swift-constraints]
max_file_size = {{.MaxFileSize}}
`

// serverConf is the [DEFAULT] every server shares. workers = 0 keeps each
// server one process, so the PID we hold is the server's. The internal
// timeouts are generous: with one replica and no updater daemons, a
// missed update on a busy 2-core machine is a stale listing or a 503.
const serverConf = `[DEFAULT]
bind_ip = 127.0.0.1
bind_port = {{.Port}}
workers = 0
user = {{.User}}
swift_dir = {{.Dir}}/etc
devices = {{.Dir}}/data
mount_check = false
disable_fallocate = true
recon_cache_path = {{.Dir}}/cache
log_name = {{.Name}}
conn_timeout = 5
node_timeout = 20
container_update_timeout = 10
`

const storageConf = serverConf + `
[pipeline:main]
pipeline = healthcheck {{.Name}}

[app:{{.Name}}]
use = egg:swift#{{.Kind}}

[filter:healthcheck]
use = egg:swift#healthcheck
`

// proxyConf: upstream's SAIO pipeline less staticweb and container sync.
// s3api must come before tempauth; slo serves both our large objects and
// S3 multipart uploads. With Keystone, authtoken and keystoneauth stand
// where s3api and tempauth stood.
const proxyConf = serverConf + `
[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl ratelimit {{if .Authtoken}}authtoken keystoneauth{{else}}s3api tempauth{{end}} copy container-quotas account-quotas slo dlo versioned_writes symlink proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
allow_account_management = true
account_autocreate = true

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:{{.MemcachedPort}}

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:bulk]
use = egg:swift#bulk

[filter:tempurl]
use = egg:swift#tempurl

[filter:ratelimit]
use = egg:swift#ratelimit

[filter:s3api]
use = egg:swift#s3api
location = us-east-1

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin
{{with .Authtoken}}
# authtoken logs in as the service user to validate tokens. It finds
# Keystone's identity endpoint in the catalog, where only a public one
# exists. It remembers a valid token for token_cache_time seconds (300 by
# default), and accepts it that long even once Keystone has revoked it.
[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory
www_authenticate_uri = {{.URL}}/v3
auth_url = {{.URL}}/v3
auth_type = password
interface = public
user_domain_id = default
project_domain_id = default
project_name = {{.Project}}
username = {{.User}}
password = {{.Password}}
token_cache_time = {{.CacheSeconds}}
include_service_catalog = false

# member is the role Keystone's bootstrap gives ordinary users.
[filter:keystoneauth]
use = egg:swift#keystoneauth
operator_roles = admin, member
{{end}}
[filter:copy]
use = egg:swift#copy

[filter:container-quotas]
use = egg:swift#container_quotas

[filter:account-quotas]
use = egg:swift#account_quotas

[filter:slo]
use = egg:swift#slo

[filter:dlo]
use = egg:swift#dlo

[filter:versioned_writes]
use = egg:swift#versioned_writes

[filter:symlink]
use = egg:swift#symlink
`
