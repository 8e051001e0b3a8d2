package atmos.metadata_test

import data.atmos.metadata

rules := {"prod": {"ticket": "^[A-Z]+-[0-9]+$", "pr": ""}}

test_missing_keys_are_denied if {
	msgs := {d.msg | some d in metadata.deny} with input as {"target": {"name": "prod"}, "metadata": {}}
		with data.gates.required_metadata as rules
	msgs == {"prod needs --metadata ticket=<value>", "prod needs --metadata pr=<value>"}
}

test_malformed_ticket_is_denied if {
	some d in metadata.deny with input as {"target": {"name": "prod"}, "metadata": {"ticket": "ops 12", "pr": "#4"}}
		with data.gates.required_metadata as rules
	d.code == "METADATA_INVALID"
}

test_complete_metadata_passes if {
	count(metadata.deny) == 0 with input as {"target": {"name": "prod"}, "metadata": {"ticket": "OPS-12", "pr": "#4"}}
		with data.gates.required_metadata as rules
}

test_other_targets_need_nothing if {
	count(metadata.deny) == 0 with input as {"target": {"name": "dev"}, "metadata": {}}
		with data.gates.required_metadata as rules
}

test_approvals_need_no_metadata if {
	count(metadata.deny) == 0 with input as {"action": "approve", "target": {"name": "prod"}, "metadata": {}}
		with data.gates.required_metadata as rules
}

test_denials_say_what_to_pass if {
	fixes := {d.fix | some d in metadata.deny} with input as {"target": {"name": "prod"}, "metadata": {"pr": "#4", "ticket": "soon"}}
		with data.gates.required_metadata as rules
	fixes == {"pass --metadata ticket=<value> with a value matching ^[A-Z]+-[0-9]+$"}
	missing := {d.fix | some d in metadata.deny} with input as {"target": {"name": "prod"}, "metadata": {"ticket": "OPS-1"}}
		with data.gates.required_metadata as rules
	missing == {"add --metadata pr=<value> to the rollout"}
}
