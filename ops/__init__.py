"""Day-2 operator tools: the `bin/bluegreen` CLI (status, release, switch, rollback, logs, doctor,
recover), built on the stack config, `pulumi` and `docker` command lines.

Three layers, kept apart so the logic is testable without Pulumi or Docker (Kamal-style):

- pure data and logic: stack config and edits (`pulumi_cli`), history (`history`), container
  states (`docker_host`), and each verb's planning and rendering (one verb per module);
- command builders: `PulumiCli` and `DockerHost` turn intents into argv lists and run nothing;
- the runner: `SubprocessRunner` runs a `Command` in the stack's environment (`environment`).

Secrets: config is read without `--show-secrets`, so a secret's value never reaches this code
(its entry is `{"secret": true}`); the keys these tools edit are refused if they are secret.
"""
