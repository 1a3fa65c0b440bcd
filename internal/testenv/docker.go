package testenv

import "github.com/ory/dockertest/v3/docker"

// dockertestHostConfig names the container host config dockertest hands to RunWithOptions.
type dockertestHostConfig = docker.HostConfig
