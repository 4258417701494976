import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseScenario, ScenarioError } from './scenario.ts';

describe('parseScenario', () => {
  test('reads YAML faults with durations, hang periods and affected targets', () => {
    const scenario = parseScenario(
      `window: 8s
faults:
  - { at: 10s, target: microkernel:driver, fault: kill }
  - at: 20s
    target: monolith
    fault: poison
  - { at: 1500ms, target: pid:4242, fault: hang, for: 2s, affects: [unikernel] }
`,
      'chaos.yaml',
    );
    assert.equal(scenario.windowMs, 8000);
    assert.deepEqual(
      scenario.faults.map((f) => [f.atMs, f.target, f.kind, f.forMs, f.affects, f.source]),
      [
        [10_000, 'microkernel:driver', 'kill', undefined, undefined, 'chaos.yaml:3'],
        [20_000, 'monolith', 'poison', undefined, undefined, 'chaos.yaml:4'],
        [1500, 'pid:4242', 'hang', 2000, ['unikernel'], 'chaos.yaml:7'],
      ],
    );
  });

  test('reads the same schedule as JSON', () => {
    const scenario = parseScenario(
      '{"faults": [{"at": "10s", "target": "microkernel:driver", "fault": "term"}]}',
    );
    assert.equal(scenario.faults[0]!.kind, 'term');
    assert.equal(scenario.faults[0]!.atMs, 10_000);
  });

  const bad: [string, string, RegExp][] = [
    [
      'unknown kind',
      'faults:\n  - { at: 10s, target: monolith, fault: explode }\n',
      /s\.yaml:2: faults\[0\]\.fault: 'explode' is not a fault kind; use one of kill, term, hang/,
    ],
    [
      'bad duration',
      'faults:\n  - at: soon\n    target: monolith\n    fault: kill\n',
      /s\.yaml:2: faults\[0\]\.at: 'soon' is not a duration/,
    ],
    [
      'missing target',
      'faults:\n  - { at: 1s, fault: kill }\n',
      /s\.yaml:2: faults\[0\]\.target must be a string/,
    ],
    [
      'hang without for',
      'faults:\n  - { at: 1s, target: monolith, fault: hang }\n',
      /faults\[0\]: a hang needs 'for'/,
    ],
    [
      'unknown field',
      'faults:\n  - { at: 1s, target: monolith, fault: kill, when: 3s }\n',
      /s\.yaml:2: unknown field 'faults\[0\]\.when'/,
    ],
    ['not a list', 'faults: kill\n', /s\.yaml:1: 'faults' must be a list/],
    ['broken YAML', 'faults: [\n', /s\.yaml:\d+: not valid YAML\/JSON/],
    ['no faults', 'rate: 10\n', /unknown field 'rate'/],
  ];
  for (const [name, text, message] of bad) {
    test(`names the line and field: ${name}`, () => {
      assert.throws(
        () => parseScenario(text, 's.yaml'),
        (err: Error) => {
          assert.ok(err instanceof ScenarioError);
          assert.match(err.message, message);
          return true;
        },
      );
    });
  }
});
