// The scaling state machine as a table: every (phase, event) pair is either a listed transition or refused.
import { expect } from 'chai';
import { EVENTS, PHASES, TRANSITIONS, transition, type ScalingEvent, type ScalingPhase } from '../../../xds-server/scaling/phases.ts';

const LEGAL: [ScalingPhase, ScalingEvent, ScalingPhase][] = [
  ['scaled_to_zero', 'wake', 'waking'],
  ['scaled_to_zero', 'observed_ready', 'ready'],
  ['waking', 'became_ready', 'ready'],
  ['waking', 'wake_failed', 'failed'],
  ['failed', 'wake', 'waking'],
  ['failed', 'backoff_over', 'scaled_to_zero'],
  ['failed', 'observed_ready', 'ready'],
  ['waking', 'observed_ready', 'ready'],
  ['ready', 'scale_down', 'draining'],
  ['ready', 'crashed', 'scaled_to_zero'],
  ['ready', 'observed_zero', 'scaled_to_zero'],
  ['draining', 'stopped', 'scaled_to_zero'],
  ['draining', 'stop_failed', 'scaled_to_zero'],
  ['draining', 'drain_aborted', 'ready'],
  ['draining', 'stop_refused', 'ready'],
];

describe('scaling phases (transitions as data)', () => {
  for (const [from, event, to] of LEGAL) {
    it(`${from} --${event}--> ${to}`, () => {
      expect(transition(from, event)).to.deep.equal({ ok: true, next: to });
    });
  }

  it('refuses every other pair, with a reason', () => {
    let refused = 0;
    for (const phase of PHASES) {
      for (const event of EVENTS) {
        if (LEGAL.some(([f, e]) => f === phase && e === event)) continue;
        const t = transition(phase, event);
        expect(t.ok, `${phase} + ${event}`).to.equal(false);
        if (!t.ok) expect(t.reason).to.contain(event).and.to.contain(phase);
        refused++;
      }
    }
    expect(refused).to.equal(PHASES.length * EVENTS.length - LEGAL.length);
  });

  it('lists exactly the legal transitions in the table', () => {
    const listed = PHASES.flatMap((p) => Object.keys(TRANSITIONS[p]).map((e) => `${p}:${e}`)).sort();
    expect(listed).to.deep.equal(LEGAL.map(([f, e]) => `${f}:${e}`).sort());
  });

  it('a failed wake is not a scale-down: only a wake, the end of the backoff or endpoints seen leave it', () => {
    expect(transition('failed', 'scale_down').ok).to.equal(false);
    expect(transition('failed', 'observed_zero').ok).to.equal(false);
  });

  it('never wakes a backend that is draining: the wake waits in the queue instead', () => {
    expect(transition('draining', 'wake').ok).to.equal(false);
  });
});
