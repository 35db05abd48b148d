// Package apk reads the APK v2 formats — signed indexes, packages, installed databases and apko lock files — as pure functions over readers.
package apk
