"""Evaluates table.json with the real oslo.policy and compares with the expected decisions.

    python3 crosscheck.py [table.json]

Prints one line per disagreement and a closing 'N agree, M disagree'; exits 1 on any
disagreement. cloud-auth/tests/oslo_table.rs runs it when a Python with oslo.policy exists.
"""
import json
import os
import sys

from oslo_config import cfg
from oslo_policy import policy


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), 'table.json')
    with open(path) as f:
        table = json.load(f)
    enforcers = {}
    for name, rule_set in table['sets'].items():
        conf = cfg.ConfigOpts()
        conf([], project='ims-crosscheck')
        enforcer = policy.Enforcer(conf, use_conf=False)
        enforcer.set_rules(policy.Rules.from_dict(rule_set['rules'], 'default'), overwrite=True, use_conf=False)
        enforcers[name] = enforcer
    agree = disagree = 0
    for case in table['cases']:
        creds = dict(table['personas'][case['creds']])
        got = bool(enforcers[case['set']].enforce(case['action'], dict(case['target']), creds))
        if got == case['expect']:
            agree += 1
        else:
            disagree += 1
            print('DISAGREE %s %s as %s: oslo.policy says %s, table says %s (%s)' % (
                case['set'], case['action'], case['creds'], got, case['expect'], case['why']))
    print('oslo.policy %s: %d agree, %d disagree' % (policy_version(), agree, disagree))
    sys.exit(1 if disagree else 0)


def policy_version():
    try:
        from importlib.metadata import version
        return version('oslo.policy')
    except Exception:  # noqa: BLE001
        return 'unknown'


if __name__ == '__main__':
    main()
