"""git as the service runs it: every git, gpg, ssh and kubectl process starts in
`gitops.git.process`, with the environment, time limit and process group decided there."""
