package main

import "github.com/spf13/cobra"

// subcommands lists vouch's subcommands; add a new command's constructor here.
func subcommands() []*cobra.Command {
	return []*cobra.Command{
		newKeysCmd(),
		newIndexCmd(),
		newDigestCmd(),
		newVerifyCmd(),
		newCheckCmd(),
		newDemoCmd(),
	}
}
