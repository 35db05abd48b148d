// Package imagefs reads the apk installed database and apk settings from a root filesystem or an OCI image's layers.
package imagefs
