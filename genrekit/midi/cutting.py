"""Cutting a window out of a MIDI file (mido), so that only the audio that is needed is synthesised.

`cut_midi`

* converts seconds to ticks with the file's tempo map (`TempoMap`), so windows are exact in time across
  tempo changes;
* starts with the state in force at the window start: system-exclusive messages seen so far (GM/GS/XG
  resets, drum-part set-up), the tempo, per channel the bank and program, every controller value, the
  RPN/NRPN parameters set so far (pitch-bend range, fine/coarse tuning), pitch bend and channel pressure;
* restarts notes still held at the window start (key down, no note-off yet) at their original velocity,
  unless they are on the drum channel (10) or began more than `RESTART_MAX_AGE` s earlier (usually a
  stuck note missing its note-off); notes held only by the sustain pedal are dropped;
* ends with sustain-off (CC64=0), all-notes-off (CC123) and all-sound-off (CC120) on all 16 channels
  (`end_messages`), without which FluidSynth 2.3 never stops on a hanging note (it keeps writing audio,
  ~90 MB/s).

A MIDI file mido cannot read only because of a malformed meta message is read with that message ignored.
"""

import logging
from contextlib import contextmanager

import numpy as np

from ..constants import CLIP_SECONDS
from ..exceptions import GenrekitError, ParameterError

log = logging.getLogger(__name__)

RESTART_MAX_AGE = 10.0
"""Notes held at a window start are restarted only if they began less than this many seconds earlier."""
DRUM_CHANNEL = 9
DEFAULT_TEMPO = 500000  # microseconds per beat (120 bpm), the MIDI default

_RESET_BY_CC121 = {1, 11, 64, 65, 66, 67, 68, 69}  # controllers "reset all controllers" returns to default
_RPN_CONTROLS = {6, 38, 96, 97, 98, 99, 100, 101}
_NOTES_OFF_CONTROLS = {120, 123, 124, 125, 126, 127}  # all-sound-off, all-notes-off, omni/mono/poly mode


class RenderError(GenrekitError):
    """A song or clip that could not be rendered; the message gives the reason."""



class TempoMap:
    """Ticks <-> seconds for a MIDI file, following every set_tempo event (on any track)."""

    def __init__(self, ticks_per_beat, tempo_changes):
        if ticks_per_beat <= 0:
            raise RenderError(f"SMPTE or invalid time division ({ticks_per_beat}) is not supported")
        self.ticks_per_beat = ticks_per_beat
        ticks, tempos, seconds = [0], [DEFAULT_TEMPO], [0.0]
        for tick, tempo in sorted(tempo_changes, key=lambda change: change[0]):
            if tempo <= 0:
                continue
            if tick == ticks[-1]:
                tempos[-1] = tempo  # the last of several changes at one tick wins
                continue
            seconds.append(seconds[-1] + (tick - ticks[-1]) * tempos[-1] / (1e6 * ticks_per_beat))
            ticks.append(tick)
            tempos.append(tempo)
        self._ticks = np.array(ticks, dtype=np.float64)
        self._tempos = np.array(tempos, dtype=np.float64)
        self._seconds = np.array(seconds, dtype=np.float64)

    def tempo_at(self, tick):
        """Microseconds per beat in force at `tick` (changes at `tick` included)."""
        return int(self._tempos[np.searchsorted(self._ticks, tick, side="right") - 1])

    def seconds(self, tick):
        i = np.searchsorted(self._ticks, tick, side="right") - 1
        return float(self._seconds[i] + (tick - self._ticks[i]) * self._tempos[i] / (1e6 * self.ticks_per_beat))

    def ticks(self, seconds):
        i = np.searchsorted(self._seconds, seconds, side="right") - 1
        return float(self._ticks[i] + (seconds - self._seconds[i]) * 1e6 * self.ticks_per_beat / self._tempos[i])


@contextmanager
def _lenient_meta_messages():
    """Make mido read a malformed meta message (an empty or invalid key signature, ...) as an
    `UnknownMetaMessage`.

    Only set_tempo matters for rendering; a malformed one is dropped (the tempo stays as it was).
    """
    from mido.midifiles import meta, midifiles

    strict = midifiles.build_meta_message

    def lenient(meta_type, data, delta):
        try:
            return strict(meta_type, data, delta)
        except Exception:  # IndexError, KeySignatureError, ...: mido's decoders raise many kinds
            return meta.UnknownMetaMessage(type_byte=meta_type, data=data, time=delta)

    midifiles.build_meta_message = lenient
    try:
        yield
    finally:
        midifiles.build_meta_message = strict


def read_midi(path):
    """Parse a MIDI file with mido (out-of-range data bytes clipped); `RenderError` if unreadable.

    A file that fails only on a malformed meta message is read again with such messages ignored.
    """
    import mido

    try:
        midi = mido.MidiFile(str(path), clip=True)
    except Exception as error:  # mido raises OSError, EOFError, ValueError, KeyError, IndexError, ...
        try:
            with _lenient_meta_messages():
                midi = mido.MidiFile(str(path), clip=True)
        except Exception:
            raise RenderError(f"unreadable MIDI ({type(error).__name__}: {error})") from None
        log.debug("%s: ignored malformed meta message(s) (%s: %s)", path, type(error).__name__, error)
    if midi.type == 2:
        raise RenderError("type 2 (asynchronous) MIDI files are not supported")
    if not midi.tracks:
        raise RenderError("MIDI file has no tracks")
    return midi


def midi_events(midi):
    """All events of all tracks as (absolute tick, track, index, message), in playing order."""
    events = []
    for number, track in enumerate(midi.tracks):
        tick = 0
        for index, message in enumerate(track):
            tick += message.time
            events.append((tick, number, index, message))
    events.sort(key=lambda event: event[:3])
    return events


def midi_tempo_map(midi, events):
    """The `TempoMap` of a parsed MIDI file, from its `midi_events`."""
    return TempoMap(midi.ticks_per_beat, [(tick, msg.tempo) for tick, _, _, msg in events if msg.type == "set_tempo"])


def midi_length(midi):
    """Length of a parsed MIDI file in seconds (to its last event, end-of-track included), as mido's."""
    events = midi_events(midi)
    return midi_tempo_map(midi, events).seconds(events[-1][0]) if events else 0.0


class _ChannelState:
    """What a channel has been told so far: bank/program, controllers, (N)RPN parameters, bend, pressure."""

    def __init__(self):
        self.bank = {0: None, 32: None}
        self.program = None  # (program, bank msb, bank lsb) at the program change
        self.controls = {}
        self.selected = {101: None, 100: None, 99: None, 98: None}
        self.selected_kind = None  # "rpn" or "nrpn": the one last selected
        self.parameters = {}  # (kind, msb, lsb) -> [data msb, data lsb]
        self.pitch = None
        self.pressure = None

    def _parameter(self):
        if self.selected_kind == "rpn":
            key = ("rpn", self.selected[101], self.selected[100])
        elif self.selected_kind == "nrpn":
            key = ("nrpn", self.selected[99], self.selected[98])
        else:
            return None
        return None if None in key[1:] or key[1:] == (127, 127) else key

    def update(self, msg):
        if msg.type == "program_change":
            self.program = (msg.program, self.bank[0], self.bank[32])
        elif msg.type == "pitchwheel":
            self.pitch = msg.pitch
        elif msg.type == "aftertouch":
            self.pressure = msg.value
        elif msg.type == "control_change":
            control, value = msg.control, msg.value
            if control in (0, 32):
                self.bank[control] = value
            elif control in (101, 100, 99, 98):
                self.selected[control] = value
                self.selected_kind = "rpn" if control in (101, 100) else "nrpn"
            elif control in (6, 38):
                key = self._parameter()
                if key is not None:
                    self.parameters.setdefault(key, [None, None])[0 if control == 6 else 1] = value
            elif control == 121:
                for reset in _RESET_BY_CC121:
                    self.controls.pop(reset, None)
                self.pitch = self.pressure = None
                self.selected = dict.fromkeys(self.selected)
                self.selected_kind = None
            elif control not in _RPN_CONTROLS and control not in _NOTES_OFF_CONTROLS:
                self.controls[control] = value

    def messages(self, channel):
        """Messages that put a fresh synth channel into this state."""
        import mido

        def cc(control, value):
            return mido.Message("control_change", channel=channel, control=control, value=value)

        out = []
        if self.program is not None:
            program, msb, lsb = self.program
            out += [cc(0, msb)] if msb is not None else []
            out += [cc(32, lsb)] if lsb is not None else []
            out.append(mido.Message("program_change", channel=channel, program=program))
        out += [cc(control, value) for control, value in self.bank.items() if value is not None]
        out += [cc(control, value) for control, value in sorted(self.controls.items())]
        for (kind, msb, lsb), (data_msb, data_lsb) in self.parameters.items():
            out += [cc(101, msb), cc(100, lsb)] if kind == "rpn" else [cc(99, msb), cc(98, lsb)]
            out += [cc(6, data_msb)] if data_msb is not None else []
            out += [cc(38, data_lsb)] if data_lsb is not None else []
        if self.selected_kind is not None:
            pair = (101, 100) if self.selected_kind == "rpn" else (99, 98)
            out += [cc(control, self.selected[control]) for control in pair if self.selected[control] is not None]
        if self.pitch is not None:
            out.append(mido.Message("pitchwheel", channel=channel, pitch=self.pitch))
        if self.pressure is not None:
            out.append(mido.Message("aftertouch", channel=channel, value=self.pressure))
        return out


def _is_reset(data):
    """True for a GM1/GM2 system-on, GS reset or XG system-on system-exclusive message (data without F0/F7)."""
    data = tuple(data)
    return (data[:4] in ((0x7E, 0x7F, 0x09, 0x01), (0x7E, 0x7F, 0x09, 0x03))
            or (len(data) >= 7 and data[0] == 0x41 and data[2:7] == (0x42, 0x12, 0x40, 0x00, 0x7F))
            or (len(data) >= 6 and data[0] == 0x43 and data[2:6] == (0x4C, 0x00, 0x00, 0x7E)))


def end_messages():
    """Sustain-off, all-notes-off and all-sound-off on all 16 channels."""
    import mido

    return [mido.Message("control_change", channel=channel, control=control, value=0)
            for channel in range(16) for control in (64, 123, 120)]


def cut_midi(midi, start, end):
    """A type-0 MIDI file playing seconds [start, end) of `midi` (a `mido.MidiFile`), see the module notes.

    The result keeps the original ticks-per-beat and tempo events; it begins with the state in force at
    `start` and ends at `end` with sustain-off / all-notes-off / all-sound-off on every channel.
    """
    import mido

    if not 0 <= start < end:
        raise ParameterError(f"need 0 <= start < end, got [{start}, {end})")
    events = midi_events(midi)
    tempo_map = midi_tempo_map(midi, events)
    start_tick = int(round(tempo_map.ticks(start)))
    end_tick = max(int(round(tempo_map.ticks(end))), start_tick + 1)

    sysex, channels, held = [], [_ChannelState() for _ in range(16)], {}
    body = []  # (tick relative to the window, message)
    for tick, _, _, msg in events:
        if tick >= end_tick:
            break
        if msg.is_meta:
            if msg.type == "set_tempo" and tick >= start_tick:
                body.append((tick - start_tick, msg.copy(time=0)))
            continue
        if tick >= start_tick:
            body.append((tick - start_tick, msg.copy(time=0)))
            continue
        if msg.type == "sysex":
            sysex.append(msg.copy(time=0))
            if _is_reset(msg.data):  # GM/GS/XG reset: what the channels were told before no longer holds
                channels, held = [_ChannelState() for _ in range(16)], {}
        elif msg.type == "note_on" and msg.velocity > 0:
            held[(msg.channel, msg.note)] = (tick, msg.velocity)
        elif msg.type in ("note_on", "note_off"):
            held.pop((msg.channel, msg.note), None)
        elif hasattr(msg, "channel"):
            if msg.type == "control_change" and msg.control in _NOTES_OFF_CONTROLS:
                held = {key: value for key, value in held.items() if key[0] != msg.channel}
            channels[msg.channel].update(msg)

    start_seconds = tempo_map.seconds(start_tick)
    head = [mido.MetaMessage("set_tempo", tempo=tempo_map.tempo_at(start_tick))] + sysex
    for channel, state in enumerate(channels):
        head += state.messages(channel)
    for (channel, note), (tick, velocity) in sorted(held.items(), key=lambda item: item[1][0]):
        if channel != DRUM_CHANNEL and start_seconds - tempo_map.seconds(tick) < RESTART_MAX_AGE:
            head.append(mido.Message("note_on", channel=channel, note=note, velocity=velocity))

    track = mido.MidiTrack()
    previous = 0
    for tick, msg in [(0, msg) for msg in head] + body + [(end_tick - start_tick, msg) for msg in end_messages()]:
        track.append(msg.copy(time=tick - previous))
        previous = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    cut = mido.MidiFile(type=0, ticks_per_beat=midi.ticks_per_beat)
    cut.tracks.append(track)
    return cut


def notes_window(midi, duration, clip_seconds=CLIP_SECONDS):
    """A `clip_seconds` window centred on the span from the first note-on to the last note event (rounded
    to 10 ms, inside [0, duration]), or None when the file has no notes."""
    events = midi_events(midi)
    notes = [tick for tick, _, _, msg in events if msg.type in ("note_on", "note_off")]
    onsets = [tick for tick, _, _, msg in events if msg.type == "note_on" and msg.velocity > 0]
    if not onsets:
        return None
    tempo_map = midi_tempo_map(midi, events)
    centre = (tempo_map.seconds(min(onsets)) + tempo_map.seconds(max(notes))) / 2
    length = min(clip_seconds, duration)
    start = round(min(max(centre - length / 2, 0.0), duration - length), 2)
    return start, round(start + length, 2)
