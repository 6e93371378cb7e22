package plasmavmc

import "time"

// VM states, as the seed spells them. A VM is Creating until its node has
// prepared it, then Stopped; start makes it Starting until QEMU runs the
// guest (Running); stop makes it Stopping until QEMU is gone (Stopped).
// Deleting lasts until the node has removed its process and disks; Failed
// carries the reason in last_error.
const (
	StateCreating = "Creating"
	StateStopped  = "Stopped"
	StateStarting = "Starting"
	StateRunning  = "Running"
	StateStopping = "Stopping"
	StateDeleting = "Deleting"
	StateFailed   = "Failed"
)

// Power is what the VM's owner last asked for; the node makes it so.
const (
	PowerOn  = "on"
	PowerOff = "off"
)

// VM is a virtual machine: what was asked (spec), what its owner wants now
// (desired power, reboot and stop requests), and what its node last saw.
type VM struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	OrgID     string `json:"org_id"`
	ProjectID string `json:"project_id"`
	State     string `json:"state"`
	// cpus and memory_mb are the seed's names for vcpus and memory_mib.
	CPUs       int    `json:"cpus"`
	MemoryMB   int    `json:"memory_mb"`
	VCPUs      int    `json:"vcpus"`
	MemoryMiB  int    `json:"memory_mib"`
	Hypervisor string `json:"hypervisor"`
	// Accel is what QEMU runs the guest with on its node: kvm, or tcg
	// where KVM cannot run guests.
	Accel   string `json:"accel,omitempty"`
	ImageID string `json:"image_id,omitempty"`
	// Boot is how the node boots the VM from its image (nil: no image).
	Boot *Boot `json:"boot,omitempty"`
	// NICs are the VM's network interfaces, in the guest's order.
	NICs []NIC `json:"nics"`
	// Volumes are the extra disks attached to the VM, after its root disk.
	Volumes    []string   `json:"volumes"`
	DiskSizeGB int        `json:"disk_size_gb,omitempty"`
	Node       string     `json:"node"`
	PID        int        `json:"pid,omitempty"`
	LastError  string     `json:"last_error,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
	StartedAt  *time.Time `json:"started_at,omitempty"`

	// The owner's requests, for the node to carry out.
	Power       string `json:"power"`
	ForceStop   bool   `json:"force_stop,omitempty"`
	RebootSeq   int    `json:"reboot_seq,omitempty"`
	RebootsDone int    `json:"reboots_done,omitempty"`
	Deleting    bool   `json:"deleting,omitempty"`
}

// CreateVMRequest is the body of POST /api/v1/vms.
type CreateVMRequest struct {
	Name       string `json:"name"`
	OrgID      string `json:"org_id"`
	ProjectID  string `json:"project_id"`
	VCPUs      int    `json:"vcpus"`
	MemoryMiB  int    `json:"memory_mib"`
	Hypervisor string `json:"hypervisor"`
	ImageID    string `json:"image_id"`
	DiskSizeGB int    `json:"disk_size_gb"`
	// Networks are the VM's NICs: a PrismNET port each.
	Networks []NetworkRequest `json:"networks"`
}

// NetworkRequest asks for one NIC in a subnet.
type NetworkRequest struct {
	SubnetID         string   `json:"subnet_id"`
	SecurityGroupIDs []string `json:"security_group_ids"`
	IP               string   `json:"ip"`
}

// NIC is one of a VM's network interfaces: a tap device on its node bound
// to a PrismNET port, with the port's MAC (so the guest's DHCP gets the
// port's address).
type NIC struct {
	PortID   string `json:"port_id"`
	SubnetID string `json:"subnet_id"`
	IP       string `json:"ip"`
	MAC      string `json:"mac_address"`
	Tap      string `json:"tap"`
}

// StopRequest is the body of POST /api/v1/vms/{id}/stop.
type StopRequest struct {
	Force bool `json:"force"`
}

// VMList is a page of VMs.
type VMList struct {
	VMs           []VM   `json:"vms"`
	NextPageToken string `json:"next_page_token,omitempty"`
}

// Console is the tail of a VM's serial console.
type Console struct {
	ID     string `json:"id"`
	Output string `json:"output"`
	Bytes  int    `json:"bytes"`
}

// Deleted answers a delete.
type Deleted struct {
	ID      string `json:"id"`
	Deleted bool   `json:"deleted"`
}

// Node is a hypervisor host as its agent registers it: what it can hold.
type Node struct {
	Name      string    `json:"name"`
	VCPUs     int       `json:"vcpus"`
	MemoryMiB int       `json:"memory_mib"`
	Accel     string    `json:"accel"`
	MaxVCPUs  int       `json:"max_vcpus_per_vm"`
	StartedAt time.Time `json:"started_at"`
}

// Owner is the VM's org, project and id (state.Owned: lists scope by them).
func (v VM) Owner() (string, string, string) { return v.OrgID, v.ProjectID, v.ID }

// Image formats: a disk image (raw or qcow2) the VM's root disk is an
// overlay of, or a kernel and initrd booted directly.
const (
	FormatRaw    = "raw"
	FormatQCOW2  = "qcow2"
	FormatKernel = "kernel"
)

// Image is a bootable image in a project.
type Image struct {
	ID               string    `json:"id"`
	Name             string    `json:"name"`
	OrgID            string    `json:"org_id"`
	ProjectID        string    `json:"project_id"`
	Format           string    `json:"format"`
	Status           string    `json:"status"`
	SizeBytes        int64     `json:"size_bytes"`
	VirtualSizeBytes int64     `json:"virtual_size_bytes,omitempty"`
	SHA256           string    `json:"sha256"`
	InitrdSizeBytes  int64     `json:"initrd_size_bytes,omitempty"`
	InitrdSHA256     string    `json:"initrd_sha256,omitempty"`
	Cmdline          string    `json:"cmdline,omitempty"`
	CreatedAt        time.Time `json:"created_at"`
}

// Owner is the image's org, project and id.
func (i Image) Owner() (string, string, string) { return i.OrgID, i.ProjectID, i.ID }

// ImageList is a page of images.
type ImageList struct {
	Images        []Image `json:"images"`
	NextPageToken string  `json:"next_page_token,omitempty"`
}

// Boot is what a node needs to boot a VM from its image: the files (on
// the node's disk) and how.
type Boot struct {
	Format  string `json:"format"`
	Disk    string `json:"disk,omitempty"`   // raw or qcow2: the overlay's base
	Kernel  string `json:"kernel,omitempty"` // kernel: direct boot
	Initrd  string `json:"initrd,omitempty"`
	Cmdline string `json:"cmdline,omitempty"`
}

// Volume states.
const (
	VolumeAvailable = "available"
	VolumeInUse     = "in-use"
)

// Volume is an extra disk: a blank qcow2 of size_gb that lives on the node
// of the VM it was first attached to (a node-local disk: it can move only
// with its VM's node), and keeps its data across detach and attach.
type Volume struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	OrgID      string    `json:"org_id"`
	ProjectID  string    `json:"project_id"`
	SizeGB     int       `json:"size_gb"`
	Status     string    `json:"status"`
	AttachedTo string    `json:"attached_to,omitempty"`
	Node       string    `json:"node,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
}

// Owner is the volume's org, project and id.
func (v Volume) Owner() (string, string, string) { return v.OrgID, v.ProjectID, v.ID }

// CreateVolumeRequest is the body of POST /api/v1/volumes.
type CreateVolumeRequest struct {
	Name      string `json:"name"`
	OrgID     string `json:"org_id"`
	ProjectID string `json:"project_id"`
	SizeGB    int    `json:"size_gb"`
}

// AttachRequest is the body of POST /api/v1/vms/{id}/volumes.
type AttachRequest struct {
	VolumeID string `json:"volume_id"`
}

// VolumeList is a page of volumes.
type VolumeList struct {
	Volumes       []Volume `json:"volumes"`
	NextPageToken string   `json:"next_page_token,omitempty"`
}
