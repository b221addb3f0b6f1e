#!/bin/sh
# Ring for a streamstage alarm: plays a sound with paplay (PulseAudio/PipeWire) or aplay (ALSA) and falls
# back to the terminal bell. The event arrives in STREAMSTAGE_* variables (and as JSON on stdin).
# STREAMSTAGE_SOUND: a sound file of your own; STREAMSTAGE_RINGS: how many times to ring (default 3).
set -u
sound="${STREAMSTAGE_SOUND:-/usr/share/sounds/freedesktop/stereo/alarm-clock-elapsed.oga}"
rings="${STREAMSTAGE_RINGS:-3}"
echo "streamstage: ${STREAMSTAGE_EVENT:-alarm} ${STREAMSTAGE_KIND:-} at ${STREAMSTAGE_TIME:-now}" >&2

ring() {
    if [ -f "$sound" ] && command -v paplay >/dev/null 2>&1 && paplay "$sound" 2>/dev/null; then return; fi
    if [ -f "$sound" ] && command -v aplay >/dev/null 2>&1 && aplay -q "$sound" 2>/dev/null; then return; fi
    { printf '\a' >/dev/tty; } 2>/dev/null || printf '\a'
    sleep 1
}

i=0
while [ "$i" -lt "$rings" ]; do
    ring
    i=$((i + 1))
done
