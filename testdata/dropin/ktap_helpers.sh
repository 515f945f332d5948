# A stand-in, written for pcap2pkt's tests, for the kernel selftests'
# tools/testing/selftests/kselftest/ktap_helpers.sh: the functions and exit
# codes that net/packetdrill/ksft_runner.sh uses, printing KTAP lines.

KSFT_PASS=0
KSFT_FAIL=1
KSFT_SKIP=4

ktap_n=0
ktap_planned=0
ktap_passed=0
ktap_failed=0

ktap_print_header() { echo "TAP version 13"; }
ktap_set_plan() { ktap_planned=$1; echo "1..$1"; }
ktap_skip_all() { echo "1..0 # SKIP $*"; }
ktap_test_pass() { ktap_n=$((ktap_n + 1)); ktap_passed=$((ktap_passed + 1)); echo "ok $ktap_n $1"; }
ktap_test_fail() { ktap_n=$((ktap_n + 1)); ktap_failed=$((ktap_failed + 1)); echo "not ok $ktap_n $1"; }
ktap_print_totals() { echo "# Totals: pass:$ktap_passed fail:$ktap_failed"; }
ktap_exit_fail_msg() { echo "Bail out! $*"; ktap_print_totals; exit "$KSFT_FAIL"; }
ktap_finished() {
	ktap_print_totals
	[ "$ktap_passed" -eq "$ktap_planned" ] && exit "$KSFT_PASS"
	exit "$KSFT_FAIL"
}
