#!/usr/bin/env bash
# The correct healthchecks.io deploy under supervisor: a new, uniquely named
# program on a fresh socket next to the old one; nginx switched only once the new
# app answers with the new version; the old program stopped only after the old
# nginx workers (which still proxy to its socket) have exited.
#
# Version: $ZDT_NEW_VERSION, or a freshly generated sha-like id when it is empty.
. "$(dirname "$0")/lib.sh"
read_state
OLD=$PROGRAM
NEW=$(gen_program)
V=$(new_version)
log "deploy $V: $OLD -> $NEW"

# 1-2. conf.d/NEW.conf, reread, add: only the new group starts (add returns at once).
add_program "$NEW" "$V"
# 3. Ready means it answers with the NEW version on its own socket, not RUNNING.
wait_program_answers "$NEW" "$V"
# 4. Upstream -> NEW.sock, nginx -t, nginx -s reload.
switch_nginx_to "$NEW"
write_state "$NEW" "$V"
# 5. The old workers finish what they proxied to OLD.sock; wait until they exited.
wait_old_workers_exited
# 6. stop (blocks until stopped), remove, delete its conf, reread.
retire_program "$OLD"
log "deployed $V as $NEW"
